//! Definitions: each maps an outcome (and the call's wait) to one box
//! (outcomes.md step 2). The five built-ins and site-defined ones share one form.

use crate::outcome::Outcome;

/// The four outbound boxes every definition has, named as their outcomes.
const OUTBOUND: [Outcome; 4] = [
    Outcome::OutboundConnected,
    Outcome::OutboundVoicemailDropped,
    Outcome::OutboundCanceled,
    Outcome::OutboundNoAnswer,
];

/// The names of the built-in definitions, the default first.
pub const BUILT_IN: [&str; 5] = ["reachable", "nhs", "ring-group", "acceptance", "acd"];

/// How one outcome picks its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Always this box.
    To(usize),
    /// One box when the call reached staff, another when it did not.
    ByReach {
        /// Box when a `queued` or `offered` is known.
        reached: usize,
        /// Box otherwise.
        unreached: usize,
    },
    /// One box when the wait is at least a threshold, another below it (or without a wait).
    ByWait {
        /// The threshold, in milliseconds.
        at_least_ms: i64,
        /// Box at or above it.
        at_least: usize,
        /// Box below it.
        below: usize,
    },
}

/// A definition: its boxes, in display order, and a rule per outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    name: String,
    boxes: Vec<String>,
    rules: Vec<Rule>,
}

/// The settings of the built-in definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltInSettings {
    /// `nhs`: a queue abandon with at least this wait is abandoned, else missed.
    pub nhs_abandon_after_ms: i64,
    /// `ring-group`: count queue abandons as abandoned rather than missed.
    pub ring_group_fishing_mode: bool,
    /// `reachable`: give `self_served` its own box.
    pub reachable_separate_self_served: bool,
}

impl Default for BuiltInSettings {
    fn default() -> Self {
        BuiltInSettings {
            nhs_abandon_after_ms: 30_000,
            ring_group_fishing_mode: false,
            reachable_separate_self_served: false,
        }
    }
}

/// A box-by-name rule, before box names become indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedRule {
    /// Always this box.
    To(String),
    /// Reached staff or not.
    ByReach {
        /// Box when reached.
        reached: String,
        /// Box when not.
        unreached: String,
    },
    /// By wait threshold.
    ByWait {
        /// Threshold in milliseconds.
        at_least_ms: i64,
        /// Box at or above it.
        at_least: String,
        /// Box below it.
        below: String,
    },
}

impl NamedRule {
    fn to(name: &str) -> NamedRule {
        NamedRule::To(name.to_owned())
    }

    fn by_reach(reached: &str, unreached: &str) -> NamedRule {
        NamedRule::ByReach {
            reached: reached.to_owned(),
            unreached: unreached.to_owned(),
        }
    }

    fn box_names(&self) -> Vec<&str> {
        match self {
            NamedRule::To(b) => vec![b],
            NamedRule::ByReach { reached, unreached } => vec![reached, unreached],
            NamedRule::ByWait {
                at_least, below, ..
            } => vec![at_least, below],
        }
    }
}

/// Why a definition cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// An inbound outcome has no rule.
    #[error("definition {definition:?} does not map outcome {outcome:?}")]
    Unmapped {
        /// The definition.
        definition: String,
        /// The outcome without a rule.
        outcome: &'static str,
    },
    /// A rule names an outcome that is not inbound (outbound and `expired` map themselves).
    #[error("definition {definition:?}: {outcome:?} is not an inbound outcome it may map")]
    NotMappable {
        /// The definition.
        definition: String,
        /// The name given.
        outcome: String,
    },
}

impl Definition {
    /// Builds a definition from box-by-name rules for every inbound outcome.
    /// Boxes appear in the order first named (by outcome order), then the
    /// outbound boxes and `expired`, which every definition shares.
    pub fn new(name: &str, map: &[(Outcome, NamedRule)]) -> Result<Definition, DefinitionError> {
        let mut boxes: Vec<String> = Vec::new();
        let mut index_of = |b: &str| match boxes.iter().position(|x| x == b) {
            Some(i) => i,
            None => {
                boxes.push(b.to_owned());
                boxes.len() - 1
            }
        };
        // Keep the conventional order of headline boxes where they exist.
        for preferred in ["answered", "missed", "abandoned"] {
            if map.iter().any(|(_, r)| r.box_names().contains(&preferred)) {
                index_of(preferred);
            }
        }
        let mut rules = vec![None; Outcome::COUNT];
        for outcome in Outcome::ALL {
            let rule = if outcome.is_outbound() || outcome == Outcome::Expired {
                Rule::To(index_of(outcome.as_str()))
            } else {
                let Some((_, named)) = map.iter().find(|(o, _)| *o == outcome) else {
                    return Err(DefinitionError::Unmapped {
                        definition: name.to_owned(),
                        outcome: outcome.as_str(),
                    });
                };
                match named {
                    NamedRule::To(b) => Rule::To(index_of(b)),
                    NamedRule::ByReach { reached, unreached } => Rule::ByReach {
                        reached: index_of(reached),
                        unreached: index_of(unreached),
                    },
                    NamedRule::ByWait {
                        at_least_ms,
                        at_least,
                        below,
                    } => Rule::ByWait {
                        at_least_ms: *at_least_ms,
                        at_least: index_of(at_least),
                        below: index_of(below),
                    },
                }
            };
            rules[outcome.index()] = Some(rule);
        }
        // Outbound and expired boxes go last, whatever order the map used.
        let tail: Vec<String> = OUTBOUND
            .iter()
            .chain(&[Outcome::Expired])
            .map(|o| o.as_str().to_owned())
            .collect();
        let order: Vec<usize> = (0..boxes.len())
            .filter(|&i| !tail.contains(&boxes[i]))
            .chain(
                tail.iter()
                    .map(|t| boxes.iter().position(|b| b == t).expect("tail box")),
            )
            .collect();
        let remap = |i: usize| order.iter().position(|&o| o == i).expect("box in order");
        let rules = rules
            .into_iter()
            .map(|r| match r.expect("every outcome has a rule") {
                Rule::To(b) => Rule::To(remap(b)),
                Rule::ByReach { reached, unreached } => Rule::ByReach {
                    reached: remap(reached),
                    unreached: remap(unreached),
                },
                Rule::ByWait {
                    at_least_ms,
                    at_least,
                    below,
                } => Rule::ByWait {
                    at_least_ms,
                    at_least: remap(at_least),
                    below: remap(below),
                },
            })
            .collect();
        let boxes = order.into_iter().map(|i| boxes[i].clone()).collect();
        Ok(Definition {
            name: name.to_owned(),
            boxes,
            rules,
        })
    }

    /// The five built-in definitions with the given settings, in [`BUILT_IN`] order.
    pub fn built_ins(settings: &BuiltInSettings) -> Vec<Definition> {
        BUILT_IN
            .iter()
            .map(|name| {
                Definition::new(name, &built_in_map(name, settings))
                    .expect("built-in definitions map every outcome")
            })
            .collect()
    }

    /// Reads a rule table keyed by outcome name (for site-defined definitions).
    pub fn from_named(
        name: &str,
        map: impl IntoIterator<Item = (String, NamedRule)>,
    ) -> Result<Definition, DefinitionError> {
        let mut rules = Vec::new();
        for (outcome_name, rule) in map {
            match Outcome::from_name(&outcome_name) {
                Some(o) if !o.is_outbound() && o != Outcome::Expired => rules.push((o, rule)),
                _ => {
                    return Err(DefinitionError::NotMappable {
                        definition: name.to_owned(),
                        outcome: outcome_name,
                    });
                }
            }
        }
        Definition::new(name, &rules)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its boxes, in display order.
    pub fn boxes(&self) -> &[String] {
        &self.boxes
    }

    /// The index of a box by name.
    pub fn box_index(&self, name: &str) -> Option<usize> {
        self.boxes.iter().position(|b| b == name)
    }

    /// The box a finished call lands in.
    pub fn box_of(&self, outcome: Outcome, wait_ms: Option<i64>, reached_staff: bool) -> usize {
        match self.rules[outcome.index()] {
            Rule::To(b) => b,
            Rule::ByReach { reached, unreached } => {
                if reached_staff {
                    reached
                } else {
                    unreached
                }
            }
            Rule::ByWait {
                at_least_ms,
                at_least,
                below,
            } => match wait_ms {
                Some(w) if w >= at_least_ms => at_least,
                _ => below,
            },
        }
    }
}

/// The outcomes.md table, one column per built-in definition.
fn built_in_map(name: &str, settings: &BuiltInSettings) -> Vec<(Outcome, NamedRule)> {
    use NamedRule as R;
    use Outcome as O;
    let to = R::to;
    let common = [(O::Answered, to("answered")), (O::DeadEnd, to("ignored"))];
    let own: Vec<(Outcome, NamedRule)> = match name {
        "reachable" => {
            let self_served = if settings.reachable_separate_self_served {
                "self_served"
            } else {
                "abandoned"
            };
            vec![
                (O::TransferAbandoned, to("answered")),
                (O::QueueAbandoned, to("missed")),
                (O::DirectMissed, to("missed")),
                (O::TimedOut, to("missed")),
                (O::Voicemail, R::by_reach("missed", "abandoned")),
                (O::Callback, R::by_reach("missed", "abandoned")),
                (O::SelfServed, to(self_served)),
                (O::Closed, to("abandoned")),
                (O::IvrDropped, to("abandoned")),
                (O::IvrAbandoned, to("abandoned")),
            ]
        }
        "nhs" => vec![
            (O::TransferAbandoned, to("answered")),
            (
                O::QueueAbandoned,
                R::ByWait {
                    at_least_ms: settings.nhs_abandon_after_ms,
                    at_least: "abandoned".into(),
                    below: "missed".into(),
                },
            ),
            (O::DirectMissed, to("missed")),
            (O::TimedOut, to("missed")),
            (O::Voicemail, R::by_reach("missed", "other")),
            (O::Callback, R::by_reach("missed", "other")),
            (O::SelfServed, to("other")),
            (O::Closed, to("other")),
            (O::IvrDropped, to("other")),
            (O::IvrAbandoned, to("other")),
        ],
        "ring-group" => {
            let queue_abandoned = if settings.ring_group_fishing_mode {
                "abandoned"
            } else {
                "missed"
            };
            vec![
                (O::TransferAbandoned, to("answered")),
                (O::QueueAbandoned, to(queue_abandoned)),
                (O::DirectMissed, to("missed")),
                (O::TimedOut, to("missed")),
                (O::Voicemail, to("missed")),
                (O::Callback, to("missed")),
                (O::SelfServed, to("abandoned")),
                (O::Closed, to("missed")),
                (O::IvrDropped, to("abandoned")),
                (O::IvrAbandoned, to("abandoned")),
            ]
        }
        "acceptance" => vec![
            (O::TransferAbandoned, to("abandoned")),
            (O::QueueAbandoned, to("abandoned")),
            (O::DirectMissed, to("abandoned")),
            (O::TimedOut, to("missed")),
            (O::Voicemail, to("voicemail")),
            (O::Callback, to("callback")),
            (O::SelfServed, to("other")),
            (O::Closed, to("other")),
            (O::IvrDropped, to("other")),
            (O::IvrAbandoned, to("other")),
        ],
        "acd" => vec![
            (O::TransferAbandoned, to("answered")),
            (O::QueueAbandoned, to("abandoned")),
            (O::DirectMissed, to("missed")),
            (O::TimedOut, to("timed_out")),
            (O::Voicemail, to("missed")),
            (O::Callback, to("missed")),
            (O::SelfServed, to("missed")),
            (O::Closed, to("missed")),
            (O::IvrDropped, to("missed")),
            (O::IvrAbandoned, to("missed")),
        ],
        other => unreachable!("no built-in definition {other}"),
    };
    common.into_iter().chain(own).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(settings: &BuiltInSettings) -> Vec<Definition> {
        Definition::built_ins(settings)
    }

    fn box_name(d: &Definition, o: Outcome, wait_ms: Option<i64>, reached: bool) -> &str {
        &d.boxes()[d.box_of(o, wait_ms, reached)]
    }

    #[test]
    fn boxes_of_each_definition() {
        let tail = [
            "outbound_connected",
            "outbound_voicemail_dropped",
            "outbound_canceled",
            "outbound_no_answer",
            "expired",
        ];
        let expected: [&[&str]; 5] = [
            &["answered", "missed", "abandoned", "ignored"],
            &["answered", "missed", "abandoned", "ignored", "other"],
            &["answered", "missed", "abandoned", "ignored"],
            &[
                "answered",
                "missed",
                "abandoned",
                "ignored",
                "callback",
                "voicemail",
                "other",
            ],
            &["answered", "missed", "abandoned", "ignored", "timed_out"],
        ];
        for (d, inbound) in defs(&BuiltInSettings::default()).iter().zip(expected) {
            let mut want: Vec<&str> = inbound.to_vec();
            want.extend(tail);
            let mut got: Vec<&str> = d.boxes().iter().map(String::as_str).collect();
            let mut sorted_want = want.clone();
            got.sort();
            sorted_want.sort();
            assert_eq!(got, sorted_want, "{}", d.name());
            assert_eq!(&d.boxes()[..3], ["answered", "missed", "abandoned"]);
        }
    }

    /// The whole outcomes.md table: (outcome, reached, wait) → box per definition.
    #[test]
    fn the_mapping_table() {
        use Outcome as O;
        let rows: [(Outcome, bool, Option<i64>, [&str; 5]); 17] = [
            (
                O::Answered,
                true,
                Some(5_000),
                ["answered", "answered", "answered", "answered", "answered"],
            ),
            (
                O::TransferAbandoned,
                true,
                Some(5_000),
                ["answered", "answered", "answered", "abandoned", "answered"],
            ),
            (
                O::QueueAbandoned,
                true,
                Some(29_999),
                ["missed", "missed", "missed", "abandoned", "abandoned"],
            ),
            (
                O::DirectMissed,
                true,
                Some(9_000),
                ["missed", "missed", "missed", "abandoned", "missed"],
            ),
            (
                O::TimedOut,
                true,
                Some(9_000),
                ["missed", "missed", "missed", "missed", "timed_out"],
            ),
            (
                O::Voicemail,
                true,
                Some(9_000),
                ["missed", "missed", "missed", "voicemail", "missed"],
            ),
            (
                O::Voicemail,
                false,
                None,
                ["abandoned", "other", "missed", "voicemail", "missed"],
            ),
            (
                O::Callback,
                true,
                Some(9_000),
                ["missed", "missed", "missed", "callback", "missed"],
            ),
            (
                O::Callback,
                false,
                None,
                ["abandoned", "other", "missed", "callback", "missed"],
            ),
            (
                O::SelfServed,
                false,
                None,
                ["abandoned", "other", "abandoned", "other", "missed"],
            ),
            (
                O::Closed,
                false,
                None,
                ["abandoned", "other", "missed", "other", "missed"],
            ),
            (
                O::IvrDropped,
                false,
                None,
                ["abandoned", "other", "abandoned", "other", "missed"],
            ),
            (
                O::IvrAbandoned,
                false,
                None,
                ["abandoned", "other", "abandoned", "other", "missed"],
            ),
            (O::DeadEnd, false, None, ["ignored"; 5]),
            (O::OutboundConnected, false, None, ["outbound_connected"; 5]),
            (O::OutboundNoAnswer, false, None, ["outbound_no_answer"; 5]),
            (O::Expired, true, None, ["expired"; 5]),
        ];
        let all = defs(&BuiltInSettings::default());
        for (outcome, reached, wait, want) in rows {
            let got: Vec<&str> = all
                .iter()
                .map(|d| box_name(d, outcome, wait, reached))
                .collect();
            assert_eq!(got, want, "{outcome:?} reached={reached}");
        }
    }

    #[test]
    fn settings_change_the_mapping() {
        let d = defs(&BuiltInSettings::default());
        assert_eq!(
            box_name(&d[1], Outcome::QueueAbandoned, Some(30_000), true),
            "abandoned"
        );
        assert_eq!(
            box_name(&d[1], Outcome::QueueAbandoned, Some(29_999), true),
            "missed"
        );
        let s = BuiltInSettings {
            nhs_abandon_after_ms: 10_000,
            ring_group_fishing_mode: true,
            reachable_separate_self_served: true,
        };
        let d = defs(&s);
        assert_eq!(
            box_name(&d[0], Outcome::SelfServed, None, false),
            "self_served"
        );
        assert_eq!(
            box_name(&d[1], Outcome::QueueAbandoned, Some(10_000), true),
            "abandoned"
        );
        assert_eq!(
            box_name(&d[2], Outcome::QueueAbandoned, Some(1), true),
            "abandoned"
        );
    }

    #[test]
    fn site_definitions_must_map_every_inbound_outcome() {
        let mut map: Vec<(String, NamedRule)> = Outcome::ALL
            .iter()
            .filter(|o| !o.is_outbound() && **o != Outcome::Expired)
            .map(|o| (o.as_str().to_owned(), NamedRule::to("counted")))
            .collect();
        let d = Definition::from_named("mine", map.clone()).unwrap();
        assert_eq!(d.boxes()[0], "counted");
        map.pop();
        assert!(matches!(
            Definition::from_named("mine", map.clone()),
            Err(DefinitionError::Unmapped { .. })
        ));
        map.push(("expired".into(), NamedRule::to("x")));
        assert!(matches!(
            Definition::from_named("mine", map),
            Err(DefinitionError::NotMappable { .. })
        ));
    }
}
