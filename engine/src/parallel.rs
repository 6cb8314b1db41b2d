//! Independent work split over the machine's cores, results in input order.
//!
//! A block's transactions are parsed, and its access requests decided, on every core: each item's
//! result depends only on the item, so the split cannot change the output. The work runs on
//! rayon's pool, whose threads live as long as the process: a block does not pay for starting
//! threads, and what one block's work allocated is freed by threads that still exist (memory
//! freed after its allocating thread exited is the allocator's slow path). Short runs stay on the
//! calling thread, where handing work over would cost more than it saves.

use rayon::prelude::*;

/// `f` over contiguous chunks of `items`, the chunks' results concatenated in order. `items` is
/// split only into chunks of at least `min_per_thread`; `f` must return one result per item for
/// the output to line up with the input.
pub fn map_chunks<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Vec<R> + Sync,
{
    let Some(chunk) = chunk_len(items.len(), min_per_thread) else {
        return f(items);
    };
    let parts: Vec<Vec<R>> = items.par_chunks(chunk).map(&f).collect();
    parts.into_iter().flatten().collect()
}

/// `f` over each of `items` with its index, by value, results in order; split as [`map_chunks`]
/// splits.
pub fn map_each<T, R, F>(items: Vec<T>, min_per_thread: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, T) -> R + Sync,
{
    let Some(chunk) = chunk_len(items.len(), min_per_thread) else {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect();
    };
    items
        .into_par_iter()
        .enumerate()
        .with_min_len(chunk)
        .map(|(i, t)| f(i, t))
        .collect()
}

/// The length of each chunk when `len` items are split over the pool's threads with at least
/// `min_per_thread` each; `None` when fewer than two threads would get work.
fn chunk_len(len: usize, min_per_thread: usize) -> Option<usize> {
    let threads = rayon::current_num_threads().min(len / min_per_thread.max(1));
    (threads >= 2).then(|| len.div_ceil(threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order_whatever_the_split() {
        for n in [0usize, 1, 7, 31, 32, 33, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let chunks = map_chunks(&items, 16, |part| part.iter().map(|i| i * 3).collect());
            assert_eq!(
                chunks,
                items.iter().map(|i| i * 3).collect::<Vec<_>>(),
                "n={n}"
            );
            let each = map_each(items.clone(), 16, |i, item| {
                assert_eq!(i, item, "each item comes with its own index");
                format!("{item}")
            });
            assert_eq!(
                each,
                items.iter().map(|i| format!("{i}")).collect::<Vec<_>>(),
                "n={n}"
            );
        }
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let items: Vec<u32> = (0..200).collect();
        let caught = std::panic::catch_unwind(|| {
            map_each(
                items,
                1,
                |_, i| if i == 150 { panic!("item 150") } else { i },
            )
        });
        assert!(caught.is_err());
    }
}
