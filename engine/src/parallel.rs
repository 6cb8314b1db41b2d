//! Independent work split over the machine's cores, results in input order.
//!
//! A block's transactions are parsed, and its access requests decided, on every core: each item's
//! result depends only on the item, so the split (one contiguous chunk per core, on scoped
//! threads) cannot change the output. Short runs stay on the calling thread, where starting
//! threads would cost more than it saves.

/// How many threads a long run is split over.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over contiguous chunks of `items`, the chunks' results concatenated in order. `items` is
/// split only when each thread gets at least `min_per_thread` of them; `f` must return one result
/// per item for the output to line up with the input.
pub fn map_chunks<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Vec<R> + Sync,
{
    let threads = threads().min(items.len() / min_per_thread.max(1));
    if threads < 2 {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        handles.into_iter().flat_map(join).collect()
    })
}

/// `f` over each of `items`, by value, results in order; split as [`map_chunks`] splits.
pub fn map_each<T, R, F>(items: Vec<T>, min_per_thread: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, T) -> R + Sync,
{
    let threads = threads().min(items.len() / min_per_thread.max(1));
    if threads < 2 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts: Vec<(usize, Vec<T>)> = Vec::with_capacity(threads);
    let mut rest = items;
    let mut start = 0;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let len = rest.len();
        parts.push((start, rest));
        start += len;
        rest = tail;
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(start, part)| {
                scope.spawn(move || {
                    part.into_iter()
                        .enumerate()
                        .map(|(i, t)| f(start + i, t))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(join).collect()
    })
}

fn join<R>(handle: std::thread::ScopedJoinHandle<'_, Vec<R>>) -> Vec<R> {
    match handle.join() {
        Ok(part) => part,
        // The work never panics by design; if it did, re-raise rather than guess.
        Err(panic) => std::panic::resume_unwind(panic),
    }
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
