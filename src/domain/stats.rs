//! Tallies of finished calls and the figures read from them. Every tally is
//! additive (a call is added, and subtracted when it is classified again), so
//! the figures never depend on the order calls were corrected in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::definition::Definition;
use crate::outcome::Outcome;

/// What one finished call adds to a tally.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Its outcome.
    pub outcome: Outcome,
    /// Its wait in milliseconds, if any.
    pub wait_ms: Option<i64>,
    /// Whether it reached staff.
    pub reached_staff: bool,
    /// Its box index in each definition, in the definitions' order.
    pub boxes: Vec<usize>,
}

impl Contribution {
    /// Whether the call counts as offered: a finished inbound call that reached staff.
    pub fn offered(&self) -> bool {
        let inbound = !self.outcome.is_outbound() && self.outcome != Outcome::Expired;
        inbound && self.reached_staff
    }
}

/// Settings of the figures (outcomes.md "Daily and rolling figures").
#[derive(Debug, Clone, PartialEq)]
pub struct FigureSettings {
    /// Service level threshold T: answered within this many ms.
    pub service_level_ms: i64,
    /// A `queue_abandoned` call with a wait below this is a short abandon.
    pub short_abandon_ms: i64,
}

impl Default for FigureSettings {
    fn default() -> Self {
        FigureSettings {
            service_level_ms: 20_000,
            short_abandon_ms: 0,
        }
    }
}

/// Per definition: its box counts and the sums behind its figures.
#[derive(Debug, Clone, Default, PartialEq)]
struct DefinitionTally {
    boxes: Vec<i64>,
    /// Calls in box `answered` that reached staff.
    answered_reached: i64,
    /// Of those, with wait ≤ T.
    answered_within_target: i64,
    /// Sum of their waits, for ASA.
    answered_wait_ms: i128,
}

/// Counts and sums of a set of finished calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    outcomes: [i64; Outcome::COUNT],
    definitions: Vec<DefinitionTally>,
    /// Finished inbound calls that reached staff.
    offered: i64,
    short_abandons: i64,
    /// Multiset of waits, so the longest survives corrections.
    waits_ms: BTreeMap<i64, u32>,
}

/// The figures of one definition, as the snapshot shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// Box name → count, every box of the definition.
    pub boxes: BTreeMap<String, i64>,
    /// Finished inbound calls that reached staff.
    pub offered: i64,
    /// Answered within T ÷ (offered − short abandons).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level: Option<f64>,
    /// Abandoned ÷ (answered + missed + abandoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandon_rate: Option<f64>,
    /// Mean wait of answered calls that reached staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asa_secs: Option<f64>,
    /// Largest wait of the finished calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_wait_secs: Option<f64>,
}

impl Tally {
    /// Adds (`sign` = 1) or removes (`sign` = -1) a call.
    pub fn apply(
        &mut self,
        c: &Contribution,
        sign: i64,
        defs: &[Definition],
        settings: &FigureSettings,
    ) {
        if self.definitions.len() != defs.len() {
            self.definitions = defs
                .iter()
                .map(|d| DefinitionTally {
                    boxes: vec![0; d.boxes().len()],
                    ..DefinitionTally::default()
                })
                .collect();
        }
        self.outcomes[c.outcome.index()] += sign;
        if c.offered() {
            self.offered += sign;
        }
        if c.outcome == Outcome::QueueAbandoned
            && c.wait_ms.is_some_and(|w| w < settings.short_abandon_ms)
        {
            self.short_abandons += sign;
        }
        if let Some(wait) = c.wait_ms {
            let entry = self.waits_ms.entry(wait).or_default();
            if sign > 0 {
                *entry += 1;
            } else {
                *entry -= 1;
                if *entry == 0 {
                    self.waits_ms.remove(&wait);
                }
            }
        }
        for ((tally, def), &b) in self.definitions.iter_mut().zip(defs).zip(&c.boxes) {
            tally.boxes[b] += sign;
            if c.reached_staff && def.boxes()[b] == "answered" {
                let wait = c.wait_ms.unwrap_or(0);
                tally.answered_reached += sign;
                tally.answered_wait_ms += i128::from(sign) * i128::from(wait);
                if wait <= settings.service_level_ms {
                    tally.answered_within_target += sign;
                }
            }
        }
    }

    /// Adds every call of `other` (a board's queues summed into one).
    pub fn merge(&mut self, other: &Tally) {
        for (a, b) in self.outcomes.iter_mut().zip(&other.outcomes) {
            *a += b;
        }
        if self.definitions.len() < other.definitions.len() {
            self.definitions = other
                .definitions
                .iter()
                .map(|d| DefinitionTally {
                    boxes: vec![0; d.boxes.len()],
                    ..DefinitionTally::default()
                })
                .collect();
        }
        for (a, b) in self.definitions.iter_mut().zip(&other.definitions) {
            for (x, y) in a.boxes.iter_mut().zip(&b.boxes) {
                *x += y;
            }
            a.answered_reached += b.answered_reached;
            a.answered_within_target += b.answered_within_target;
            a.answered_wait_ms += b.answered_wait_ms;
        }
        self.offered += other.offered;
        self.short_abandons += other.short_abandons;
        for (wait, n) in &other.waits_ms {
            *self.waits_ms.entry(*wait).or_default() += n;
        }
    }

    /// Whether no call is counted.
    pub fn is_empty(&self) -> bool {
        self.outcomes.iter().all(|&n| n == 0)
    }

    /// Finished calls counted.
    pub fn calls(&self) -> i64 {
        self.outcomes.iter().sum()
    }

    /// Outcome name → count, for the outcomes that occurred.
    pub fn outcomes(&self) -> BTreeMap<String, i64> {
        Outcome::ALL
            .iter()
            .filter(|o| self.outcomes[o.index()] != 0)
            .map(|o| (o.as_str().to_owned(), self.outcomes[o.index()]))
            .collect()
    }

    /// The count of one outcome.
    pub fn outcome_count(&self, outcome: Outcome) -> i64 {
        self.outcomes[outcome.index()]
    }

    /// The figures of definition number `i`.
    pub fn figures(&self, i: usize, def: &Definition) -> Figures {
        let empty = DefinitionTally {
            boxes: vec![0; def.boxes().len()],
            ..DefinitionTally::default()
        };
        let t = self.definitions.get(i).unwrap_or(&empty);
        let count = |name: &str| def.box_index(name).map_or(0, |b| t.boxes[b]);
        let ratio = |num: i64, den: i64| (den > 0).then(|| num as f64 / den as f64);
        Figures {
            boxes: def
                .boxes()
                .iter()
                .zip(&t.boxes)
                .map(|(name, n)| (name.clone(), *n))
                .collect(),
            offered: self.offered,
            service_level: ratio(t.answered_within_target, self.offered - self.short_abandons),
            abandon_rate: ratio(
                count("abandoned"),
                count("answered") + count("missed") + count("abandoned"),
            ),
            asa_secs: (t.answered_reached > 0)
                .then(|| t.answered_wait_ms as f64 / t.answered_reached as f64 / 1000.0),
            longest_wait_secs: self.waits_ms.keys().next_back().map(|&w| w as f64 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::BuiltInSettings;

    fn contribution(
        defs: &[Definition],
        outcome: Outcome,
        wait_ms: Option<i64>,
        reached: bool,
    ) -> Contribution {
        Contribution {
            outcome,
            wait_ms,
            reached_staff: reached,
            boxes: defs
                .iter()
                .map(|d| d.box_of(outcome, wait_ms, reached))
                .collect(),
        }
    }

    #[test]
    fn figures_and_exact_removal() {
        let defs = Definition::built_ins(&BuiltInSettings::default());
        let settings = FigureSettings {
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
        };
        let calls = [
            contribution(&defs, Outcome::Answered, Some(10_000), true),
            contribution(&defs, Outcome::Answered, Some(30_000), true),
            contribution(&defs, Outcome::Answered, Some(0), false),
            contribution(&defs, Outcome::QueueAbandoned, Some(2_000), true),
            contribution(&defs, Outcome::QueueAbandoned, Some(40_000), true),
            contribution(&defs, Outcome::IvrAbandoned, None, false),
            contribution(&defs, Outcome::OutboundConnected, None, false),
        ];
        let mut tally = Tally::default();
        for c in &calls {
            tally.apply(c, 1, &defs, &settings);
        }
        let f = tally.figures(0, &defs[0]);
        assert_eq!(f.offered, 4);
        assert_eq!(f.boxes["answered"], 3);
        assert_eq!(f.boxes["missed"], 2);
        assert_eq!(f.boxes["abandoned"], 1);
        assert_eq!(f.boxes["outbound_connected"], 1);
        assert_eq!(f.service_level, Some(1.0 / 3.0));
        assert_eq!(f.abandon_rate, Some(1.0 / 6.0));
        assert_eq!(f.asa_secs, Some(20.0));
        assert_eq!(f.longest_wait_secs, Some(40.0));
        let nhs = tally.figures(1, &defs[1]);
        assert_eq!(nhs.boxes["abandoned"], 1);
        assert_eq!(nhs.abandon_rate, Some(1.0 / 5.0));

        let (mut left, mut right, mut merged) =
            (Tally::default(), Tally::default(), Tally::default());
        for (i, c) in calls.iter().enumerate() {
            let half = if i % 2 == 0 { &mut left } else { &mut right };
            half.apply(c, 1, &defs, &settings);
        }
        merged.merge(&left);
        merged.merge(&right);
        assert_eq!(merged, tally);

        tally.apply(&calls[4], -1, &defs, &settings);
        assert_eq!(tally.figures(0, &defs[0]).longest_wait_secs, Some(30.0));
        for c in calls.iter().filter(|c| **c != calls[4]) {
            tally.apply(c, -1, &defs, &settings);
        }
        assert!(tally.is_empty());
        let f = tally.figures(0, &defs[0]);
        assert_eq!(
            (
                f.service_level,
                f.abandon_rate,
                f.asa_secs,
                f.longest_wait_secs
            ),
            (None, None, None, None)
        );
    }
}
