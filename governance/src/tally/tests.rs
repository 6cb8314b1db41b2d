//! Table-driven checks of the tally: quorum is "at least", threshold is "strictly more than",
//! abstain counts toward quorum only, and an early decision is taken only when no way of casting
//! the remaining weight could change it.

use super::*;
use crate::params::Ratio;

fn params(quorum: (u64, u64), threshold: (u64, u64)) -> VotingParams {
    VotingParams {
        quorum: Ratio::new(quorum.0, quorum.1).unwrap(),
        threshold: Ratio::new(threshold.0, threshold.1).unwrap(),
        voting_period: 10,
        activation_delay: 2,
        max_open_proposals: 3,
        max_open_bundle_bytes: None,
        veto_threshold: None,
        emergency: None,
    }
}

struct Case {
    why: &'static str,
    /// yes, no, abstain, total.
    tally: (u64, u64, u64, u64),
    quorum: (u64, u64),
    threshold: (u64, u64),
    at_close: Outcome,
    decided: Outcome,
}

use Outcome::{Expired, Open, Passed, Rejected};

const HALF: (u64, u64) = (1, 2);
const MAX: u64 = u64::MAX;

const CASES: &[Case] = &[
    // ---- the dev genesis rules: three members of weight 1, quorum 1/2, threshold 1/2
    Case {
        why: "nobody voted: no quorum at close, and three yes could still pass it",
        tally: (0, 0, 0, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
    Case {
        why: "one yes of three: 1/3 is below the 1/2 quorum",
        tally: (1, 0, 0, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
    Case {
        why: "two yes of three: even the last member voting no leaves 2/3 > 1/2, so it passes early",
        tally: (2, 0, 0, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "a tie is not a majority (strictly more than 1/2), but the third vote can still break it",
        tally: (1, 1, 0, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Open,
    },
    Case {
        why: "a final tie with an abstention: nothing remains, the tie rejects",
        tally: (1, 1, 1, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Rejected,
    },
    Case {
        why: "all abstain: quorum is reached but no yes was cast, so it is rejected, not expired",
        tally: (0, 0, 3, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Rejected,
    },
    Case {
        why: "two abstentions make quorum but carry no yes; the last member voting yes would pass it",
        tally: (0, 0, 2, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Open,
    },
    Case {
        why: "abstain helps quorum only: 1 yes + 1 abstain passes at close (1/1 of yes+no), \
              but the last member voting no would make it a tie",
        tally: (1, 0, 1, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Open,
    },
    Case {
        why: "two no of three: even a yes from the last member gives 1/3, rejected early",
        tally: (0, 2, 0, 3),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Rejected,
    },
    // ---- quorum boundary: at least
    Case {
        why: "quorum exactly reached (2 of 4 = 1/2) counts: quorum is `at least`",
        tally: (2, 0, 0, 4),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Open,
    },
    Case {
        why: "one weight short of quorum (199 of 300 < 2/3) expires",
        tally: (199, 0, 0, 300),
        quorum: (2, 3),
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
    Case {
        why: "exactly 2/3 of 300 reaches a 2/3 quorum; 100 left voting no gives 200/300 > 1/2",
        tally: (200, 0, 0, 300),
        quorum: (2, 3),
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "abstentions alone reach quorum exactly (150 of 300) without deciding anything",
        tally: (0, 0, 150, 300),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Open,
    },
    // ---- threshold boundary: strictly more than
    Case {
        why: "yes exactly 2/3 of yes+no does not exceed a 2/3 threshold",
        tally: (200, 100, 0, 300),
        quorum: HALF,
        threshold: (2, 3),
        at_close: Rejected,
        decided: Rejected,
    },
    Case {
        why: "one more yes (201 of 301) exceeds 2/3",
        tally: (201, 100, 0, 301),
        quorum: HALF,
        threshold: (2, 3),
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "a zero threshold still needs one yes: all-abstain is rejected",
        tally: (0, 0, 5, 5),
        quorum: HALF,
        threshold: (0, 1),
        at_close: Rejected,
        decided: Rejected,
    },
    Case {
        why: "a zero threshold passes on any yes once quorum holds",
        tally: (1, 100, 0, 101),
        quorum: HALF,
        threshold: (0, 1),
        at_close: Passed,
        decided: Passed,
    },
    // ---- unequal weights (6, 3, 1 of 10)
    Case {
        why: "the weight-6 member alone: 6 yes vs at most 4 no is 6/10 > 1/2, decided early",
        tally: (6, 0, 0, 10),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "5 yes of 10 reaches quorum, but 5 remaining no would tie: not decided early",
        tally: (5, 0, 0, 10),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Open,
    },
    Case {
        why: "3 yes and 1 no of 10: no quorum yet, the weight-6 member decides either way",
        tally: (3, 1, 0, 10),
        quorum: HALF,
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
    Case {
        why: "the weight-6 member voted no: even 4 remaining yes gives 4/10, rejected early",
        tally: (0, 6, 0, 10),
        quorum: HALF,
        threshold: HALF,
        at_close: Rejected,
        decided: Rejected,
    },
    Case {
        why: "a 9/10 quorum with 2 of 10 abstaining: far from quorum, but the 8 remaining can \
              still reach it (quorum is always reachable, so the tally never expires early)",
        tally: (0, 0, 2, 10),
        quorum: (9, 10),
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
    // ---- huge weights: cross-multiplication in u128, no overflow
    Case {
        why: "u64::MAX total, all but one yes: passes, no overflow",
        tally: (MAX - 1, 1, 0, MAX),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "u64::MAX = 2k+1 total, k+1 yes: k remaining no gives (k+1)/(2k+1) > 1/2, early pass",
        tally: (MAX / 2 + 1, 0, 0, MAX),
        quorum: HALF,
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "u64::MAX total, k yes: the k+1 remaining could vote no, so still open",
        tally: (MAX / 2, 0, 0, MAX),
        quorum: (1, MAX),
        threshold: HALF,
        at_close: Passed,
        decided: Open,
    },
    Case {
        why: "a quorum of (MAX-1)/MAX reached exactly by MAX-1 of MAX: the products need 128 bits",
        tally: (MAX - 1, 0, 0, MAX),
        quorum: (MAX - 1, MAX),
        threshold: HALF,
        at_close: Passed,
        decided: Passed,
    },
    Case {
        why: "one weight below that huge quorum: (MAX-2)*MAX < (MAX-1)*MAX",
        tally: (MAX - 2, 0, 0, MAX),
        quorum: (MAX - 1, MAX),
        threshold: HALF,
        at_close: Expired,
        decided: Open,
    },
];

#[test]
fn table_of_outcomes() {
    for case in CASES {
        let (yes, no, abstain, total) = case.tally;
        let t = Tally {
            yes,
            no,
            abstain,
            total,
        };
        let p = params(case.quorum, case.threshold);
        assert_eq!(t.at_close(&p), case.at_close, "at_close: {}", case.why);
        assert_eq!(t.decided(&p), case.decided, "decided: {}", case.why);
    }
}

/// Whether some way of casting the `remaining` weight (in units of 1: any member split is a
/// coarser case of this) gives each outcome at close.
fn reachable(t: &Tally, p: &VotingParams) -> (bool, bool) {
    let r = t.remaining();
    let (mut can_pass, mut can_fail) = (false, false);
    for dy in 0..=r {
        for dn in 0..=r - dy {
            for da in 0..=r - dy - dn {
                let later = Tally {
                    yes: t.yes + dy,
                    no: t.no + dn,
                    abstain: t.abstain + da,
                    total: t.total,
                };
                if later.at_close(p) == Passed {
                    can_pass = true;
                } else {
                    can_fail = true;
                }
            }
        }
    }
    (can_pass, can_fail)
}

/// `decided` is exact on small totals: Passed iff every continuation passes, Rejected iff none
/// does, Open iff both remain possible. Checked against brute force for every tally up to a total
/// of 6 under several rule sets.
#[test]
fn an_early_decision_only_when_no_remaining_weight_can_change_it() {
    let rules = [
        (HALF, HALF),
        ((2, 3), HALF),
        (HALF, (2, 3)),
        ((1, 1), (1, 2)),
        ((1, 6), (0, 1)),
        ((3, 5), (3, 4)),
    ];
    let mut checked = 0;
    for (q, th) in rules {
        let p = params(q, th);
        for total in 1..=6u64 {
            for yes in 0..=total {
                for no in 0..=total - yes {
                    for abstain in 0..=total - yes - no {
                        let t = Tally {
                            yes,
                            no,
                            abstain,
                            total,
                        };
                        let (can_pass, can_fail) = reachable(&t, &p);
                        let expected = match (can_pass, can_fail) {
                            (true, false) => Passed,
                            (false, true) => Rejected,
                            (true, true) => Open,
                            (false, false) => unreachable!("at least one continuation exists"),
                        };
                        assert_eq!(t.decided(&p), expected, "{t:?} under {q:?}/{th:?}");
                        if t.remaining() == 0 {
                            // With nothing left, the early decision is the decision at close
                            // (Rejected covers a close without quorum too).
                            let close = t.at_close(&p);
                            let close = if close == Expired { Rejected } else { close };
                            assert_eq!(t.decided(&p), close, "{t:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 300, "the sweep covered {checked} tallies");
}

/// A vote change moves weight from one choice to another without creating or losing any.
#[test]
fn changing_a_vote_moves_weight_between_choices() {
    let mut t = Tally::new(10);
    t.add(Choice::Yes, 6);
    t.add(Choice::No, 3);
    assert_eq!(t.remaining(), 1);
    t.remove(Choice::Yes, 6);
    t.add(Choice::Abstain, 6);
    assert_eq!((t.yes, t.no, t.abstain, t.remaining()), (0, 3, 6, 1));
    // Saturating arithmetic never wraps, even on a (buggy) over-removal.
    t.remove(Choice::No, 5);
    assert_eq!(t.no, 0);
    let mut big = Tally::new(MAX);
    big.add(Choice::Yes, MAX);
    big.add(Choice::Yes, 1);
    assert_eq!((big.yes, big.remaining()), (MAX, 0));
}

mod brakes {
    use super::*;
    use crate::params::EmergencyParams;
    use proptest::prelude::*;

    fn ratio() -> impl Strategy<Value = Ratio> {
        (1u64..=12, 1u64..=12).prop_map(|(a, b)| {
            let (num, den) = if a <= b { (a, b) } else { (b, a) };
            Ratio::new(num, den).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// An emergency proposal is voted under a strictly higher threshold: whatever the votes,
        /// it never passes (at close, or decided early) where an ordinary one would not.
        #[test]
        fn emergency_rules_are_never_easier_to_pass(
            yes in 0u64..50, no in 0u64..50, abstain in 0u64..50, extra in 0u64..50,
            quorum in ratio(),
            (den, t, e) in (2u64..=12).prop_flat_map(|den| (Just(den), 0..den - 1))
                .prop_flat_map(|(den, t)| (Just(den), Just(t), t + 1..den)),
        ) {
            // Thresholds t/den < e/den < 1.
            let mut ordinary = params((quorum.num, quorum.den), (t, den));
            ordinary.emergency = Some(EmergencyParams {
                threshold: Ratio::new(e, den).unwrap(),
                activation_delay: 1,
            });
            prop_assert!(ordinary.check().is_ok(), "{:?}", ordinary.check());
            let rules = ordinary.for_emergency().unwrap();
            let total = yes + no + abstain + extra;
            prop_assume!(total > 0);
            let tally = Tally { yes, no, abstain, total };
            if tally.at_close(&rules) == Outcome::Passed {
                prop_assert_eq!(tally.at_close(&ordinary), Outcome::Passed);
            }
            if tally.decided(&rules) == Outcome::Passed {
                prop_assert_eq!(tally.decided(&ordinary), Outcome::Passed);
            }
            if tally.decided(&ordinary) == Outcome::Rejected {
                prop_assert_eq!(tally.decided(&rules), Outcome::Rejected);
            }
        }

        /// Vetoes stop a proposal exactly when their weight reaches the share of the total, and
        /// more weight never lifts a veto.
        #[test]
        fn a_veto_is_exact_at_the_boundary_and_monotone(
            weights in proptest::collection::vec(1u64..20, 1..12),
            share in ratio(),
            vetoers in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let mut rules = params((1, 2), (1, 2));
            rules.veto_threshold = Some(share);
            let total: u64 = weights.iter().sum();
            let mut vetoed_weight = 0u64;
            let mut stopped = false;
            for (w, vetoes) in weights.iter().zip(&vetoers) {
                if !*vetoes {
                    continue;
                }
                vetoed_weight += w;
                let now = vetoed(vetoed_weight, total, &rules);
                prop_assert!(!stopped || now, "more veto weight lifted a veto");
                stopped = now;
                let exact = u128::from(vetoed_weight) * u128::from(share.den)
                    >= u128::from(share.num) * u128::from(total);
                prop_assert_eq!(now, exact);
            }
            // Without a veto threshold in the rules, nothing is ever vetoed.
            prop_assert!(!vetoed(total, total, &params((1, 2), (1, 2))));
        }
    }
}
