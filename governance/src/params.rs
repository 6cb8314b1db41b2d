//! Voting parameters. Shares are integer ratios, compared by cross-multiplication in `u128`, so
//! no floating point enters governance and every node computes the same outcome.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A share `num/den` with `den > 0` and `num <= den`; written as the string `"num/den"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u64,
    pub den: u64,
}

impl Ratio {
    pub fn new(num: u64, den: u64) -> Result<Ratio, String> {
        if den == 0 {
            return Err(format!("`{num}/{den}`: the denominator must be positive"));
        }
        if num > den {
            return Err(format!("`{num}/{den}`: a share cannot exceed 1"));
        }
        Ok(Ratio { num, den })
    }

    /// `part / whole >= self`, exactly.
    pub fn reached_by(&self, part: u64, whole: u64) -> bool {
        u128::from(part) * u128::from(self.den) >= u128::from(self.num) * u128::from(whole)
    }

    /// `part / whole > self`, exactly.
    pub fn exceeded_by(&self, part: u64, whole: u64) -> bool {
        u128::from(part) * u128::from(self.den) > u128::from(self.num) * u128::from(whole)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl Ratio {
    /// `num/den` as written, bounds not checked: what a message or genesis states, checked as a
    /// whole by [`VotingParams::check`] (so an out-of-range share is an invalid change naming its
    /// field, not an unreadable message).
    fn parse_written(s: &str) -> Result<Ratio, String> {
        let (n, d) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected a share written `num/den`, e.g. `2/3`"))?;
        let parse = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{s}`: `{t}` is not a non-negative integer"));
            }
            t.parse::<u64>().map_err(|e| format!("`{s}`: {e}"))
        };
        Ok(Ratio {
            num: parse(n)?,
            den: parse(d)?,
        })
    }
}

impl std::str::FromStr for Ratio {
    type Err = String;
    fn from_str(s: &str) -> Result<Ratio, String> {
        let written = Ratio::parse_written(s)?;
        Ratio::new(written.num, written.den)
    }
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ratio, D::Error> {
        let text = String::deserialize(d)?;
        Ratio::parse_written(&text).map_err(serde::de::Error::custom)
    }
}

/// The rules a proposal is voted under; frozen into each proposal when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotingParams {
    /// Weight that must take part (yes + no + abstain), as a share of the total: at least this.
    pub quorum: Ratio,
    /// Yes as a share of yes + no: strictly more than this.
    pub threshold: Ratio,
    /// Blocks a proposal is open for votes, counting the block it was proposed in.
    pub voting_period: u64,
    /// Blocks between the decision and the activation (at least 1: a change never takes effect
    /// inside the block that decided it).
    pub activation_delay: u64,
    /// Open (voting) proposals one member may have at a time.
    pub max_open_proposals: u32,
    /// Bytes the distinct candidate bundles of all open (voting or queued) policy proposals may
    /// hold together; [`DEFAULT_MAX_OPEN_BUNDLE_BYTES`] when absent. Written only when set, so
    /// rules that leave it out keep their digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_bundle_bytes: Option<u64>,
    /// The share of the total weight whose vetoes stop a passed proposal during its activation
    /// delay (at least this). Absent: no vetoes. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub veto_threshold: Option<Ratio>,
    /// Rollback to the previous policy set in an emergency: a higher threshold, a shorter delay.
    /// Absent: no emergency rollback. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<EmergencyParams>,
}

/// The rules of an emergency rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyParams {
    /// Yes as a share of yes + no: strictly more than this; above the ordinary threshold.
    pub threshold: Ratio,
    /// Blocks between the decision and the activation: at least 1, below the ordinary delay.
    pub activation_delay: u64,
}

impl VotingParams {
    /// `sha256:` over the canonical JSON of the rules: what a voting-rule change names as its
    /// `base`.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let text = accord_engine::ledger::canonical_json(&value);
        format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
    }
}

/// The bundle-size budget of open proposals when the rules do not set one: 64 MiB.
pub const DEFAULT_MAX_OPEN_BUNDLE_BYTES: u64 = 64 << 20;

impl VotingParams {
    /// Checks the invariants the tally relies on; an error names the field and the reason.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        Ratio::new(self.quorum.num, self.quorum.den).map_err(|e| ("quorum", e))?;
        Ratio::new(self.threshold.num, self.threshold.den).map_err(|e| ("threshold", e))?;
        if self.quorum.num == 0 {
            return Err(("quorum", "must be more than 0".into()));
        }
        if self.threshold.num >= self.threshold.den {
            return Err((
                "threshold",
                "must be less than 1 (yes must exceed it)".into(),
            ));
        }
        if self.voting_period == 0 {
            return Err(("voting_period", "must be at least 1 block".into()));
        }
        if self.activation_delay == 0 {
            return Err(("activation_delay", "must be at least 1 block".into()));
        }
        if self.max_open_proposals == 0 {
            return Err(("max_open_proposals", "must be at least 1".into()));
        }
        if self.max_open_bundle_bytes == Some(0) {
            return Err(("max_open_bundle_bytes", "must be at least 1 byte".into()));
        }
        if let Some(veto) = self.veto_threshold {
            Ratio::new(veto.num, veto.den).map_err(|e| ("veto_threshold", e))?;
            if veto.num == 0 {
                return Err(("veto_threshold", "must be more than 0".into()));
            }
        }
        if let Some(e) = &self.emergency {
            Ratio::new(e.threshold.num, e.threshold.den).map_err(|r| ("emergency.threshold", r))?;
            if e.threshold.num >= e.threshold.den {
                return Err((
                    "emergency.threshold",
                    "must be less than 1 (yes must exceed it)".into(),
                ));
            }
            // a/b > c/d  ⇔  a·d > c·b (no overflow in 128 bits).
            let higher = u128::from(e.threshold.num) * u128::from(self.threshold.den)
                > u128::from(self.threshold.num) * u128::from(e.threshold.den);
            if !higher {
                return Err((
                    "emergency.threshold",
                    format!("must be above the threshold {}", self.threshold),
                ));
            }
            if e.activation_delay == 0 || e.activation_delay >= self.activation_delay {
                return Err((
                    "emergency.activation_delay",
                    format!(
                        "must be at least 1 block and below the activation delay ({})",
                        self.activation_delay
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The rules an emergency rollback is voted under: these, with the emergency threshold and
    /// delay. `None` when the rules allow no emergency rollback.
    pub fn for_emergency(&self) -> Option<VotingParams> {
        self.emergency.map(|e| VotingParams {
            threshold: e.threshold,
            activation_delay: e.activation_delay,
            ..self.clone()
        })
    }

    /// The bundle-size budget of open proposals, in bytes.
    pub fn open_bundle_budget(&self) -> u64 {
        self.max_open_bundle_bytes
            .unwrap_or(DEFAULT_MAX_OPEN_BUNDLE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_parse_strictly() {
        assert_eq!("2/3".parse::<Ratio>(), Ok(Ratio { num: 2, den: 3 }));
        for bad in ["", "2", "2/0", "4/3", "-1/2", "1.5/2", "1/ 2", "a/b"] {
            assert!(bad.parse::<Ratio>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn comparisons_are_exact_at_the_boundary() {
        let two_thirds = Ratio::new(2, 3).unwrap();
        assert!(two_thirds.reached_by(2, 3));
        assert!(!two_thirds.exceeded_by(2, 3));
        assert!(two_thirds.exceeded_by(667, 1000));
        assert!(!two_thirds.reached_by(666, 1000));
        // No overflow with the largest weights.
        assert!(Ratio::new(1, 1).unwrap().reached_by(u64::MAX, u64::MAX));
    }
}
