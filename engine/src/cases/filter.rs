//! Which cases to run: `accord test --filter PATTERN`.
//!
//! A pattern without `*`, `?` or `[` selects the cases whose name contains it; with one of them it
//! is a glob that must match the whole name (`*` any run of characters, `?` one character, `[abc]`,
//! `[a-z]` and `[!abc]` one of a set). Matching is case-sensitive.

/// A compiled `--filter` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pattern: Vec<char>,
    glob: bool,
}

impl Filter {
    pub fn new(pattern: &str) -> Filter {
        Filter {
            pattern: pattern.chars().collect(),
            glob: pattern.contains(['*', '?', '[']),
        }
    }

    /// Whether the case named `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        if self.glob {
            glob(&self.pattern, &name)
        } else if self.pattern.is_empty() {
            true
        } else {
            name.windows(self.pattern.len()).any(|w| w == self.pattern)
        }
    }
}

/// Whether `pattern` matches all of `text`: iterative, with backtracking to the last `*` only, so
/// it is linear in practice and never recursive.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The position after the last `*` seen, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some('?') => {
                p += 1;
                t += 1;
                continue;
            }
            Some('[') => {
                if let Some((matched, next)) = class(pattern, p, text[t]) {
                    if matched {
                        p = next;
                        t += 1;
                        continue;
                    }
                } else if text[t] == '[' {
                    // An unclosed `[` is a literal.
                    p += 1;
                    t += 1;
                    continue;
                }
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, matched_to)) => {
                p = after;
                t = matched_to + 1;
                star = Some((after, t));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The character class opening at `pattern[open]`: whether `c` is in it, and the position after
/// its `]`; `None` when the class is not closed.
fn class(pattern: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = matches!(pattern.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let item = *pattern.get(i)?;
        if item == ']' && !first {
            return Some((found != negated, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            let end = pattern[i + 2];
            found |= item <= c && c <= end;
            i += 3;
        } else {
            found |= item == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn a_plain_pattern_is_a_substring() {
        let f = Filter::new("treatment");
        assert!(f.matches("physician reads for treatment"));
        assert!(f.matches("treatment"));
        assert!(!f.matches("Treatment"), "case-sensitive");
        assert!(!f.matches("marketing"));
        assert!(Filter::new("").matches("anything"));
    }

    #[test]
    fn a_glob_matches_the_whole_name() {
        let f = Filter::new("GDPR Art. 9*");
        assert!(f.matches("GDPR Art. 9(2)(h) care"));
        assert!(!f.matches("a GDPR Art. 9 case"), "anchored at the start");
        assert!(Filter::new("*Art. 9*").matches("a GDPR Art. 9 case"));
        assert!(Filter::new("*care").matches("GDPR care"));
        assert!(!Filter::new("*care").matches("care home"));
        assert!(Filter::new("a?c").matches("abc"));
        assert!(!Filter::new("a?c").matches("ac"));
        assert!(Filter::new("*a*b*c*").matches("xxaxxbxxcxx"));
        assert!(!Filter::new("*a*b*c*").matches("xxaxxcxxbxx"));
        assert!(Filter::new("**").matches(""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(Filter::new("tx-[0-9]").matches("tx-7"));
        assert!(!Filter::new("tx-[0-9]").matches("tx-a"));
        assert!(Filter::new("tx-[!0-9]").matches("tx-a"));
        assert!(Filter::new("[ab]*").matches("b side"));
        assert!(Filter::new("[]]x").matches("]x"), "a leading ] is a member");
        // An unclosed class is a literal `[`.
        assert!(Filter::new("a[b").matches("a[b"));
        assert!(!Filter::new("a[b").matches("ab"));
    }

    #[test]
    fn unicode_names_match_by_character() {
        assert!(Filter::new("Zürich?").matches("Zürich!"));
        assert!(Filter::new("santé").matches("Code de la santé publique"));
    }
}
