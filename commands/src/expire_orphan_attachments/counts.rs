//! What a sweep of the store counted ([`Survey`], in objects and bytes per [`Class`]) and did
//! ([`Sweep`]: marks, reprieves, failures, and a sample of the keys for the report).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::sweep::{days_after, Class};

/// A number of objects and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, size: u64) {
        self.count += 1;
        self.bytes += size;
    }

    pub fn plus(self, other: Tally) -> Tally {
        Tally {
            count: self.count + other.count,
            bytes: self.bytes + other.bytes,
        }
    }

    pub fn json(self) -> Value {
        json!({"count": self.count, "bytes": self.bytes})
    }

    pub fn text(self) -> String {
        format!("{} object(s), {} bytes", self.count, self.bytes)
    }
}

/// The survey of the store: every listed object, by class.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub listed: Tally,
    pub bundles: Tally,
    pub placeholders: Tally,
    pub recent: Tally,
    pub referenced: Tally,
    pub to_reprieve: Tally,
    pub to_mark: Tally,
    pub already_marked: Tally,
}

impl Survey {
    pub fn add(&mut self, class: Class, size: u64) {
        self.listed.add(size);
        let tally = match class {
            Class::Bundle => &mut self.bundles,
            Class::Placeholder => &mut self.placeholders,
            Class::Recent => &mut self.recent,
            Class::Referenced => &mut self.referenced,
            Class::Reprieve => &mut self.to_reprieve,
            Class::Orphan => &mut self.to_mark,
            Class::AlreadyMarked => &mut self.already_marked,
        };
        tally.add(size);
    }

    /// The objects this job judges (all but bundles and folder placeholders).
    pub fn judged(&self) -> Tally {
        self.referenced
            .plus(self.to_reprieve)
            .plus(self.to_mark)
            .plus(self.already_marked)
            .plus(self.recent)
    }
}

/// What happened in the store.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The `customTime` of new marks: the run's start, to the second.
    pub mark_time: OffsetDateTime,
    /// The `customTime` of reprieves: `REPRIEVE_DAYS` after `mark_time`.
    pub reprieve_until: OffsetDateTime,
    pub survey: Survey,
    /// The survey's listing failed: nothing was marked.
    pub survey_error: Option<String>,
    /// The marking pass's listing failed: the marks sent before stand.
    pub marking_error: Option<String>,
    pub cap_exceeded: bool,
    pub marked: Tally,
    pub reprieved: Tally,
    pub write_failures: usize,
    /// The first few failed updates.
    pub write_errors: Vec<String>,
    pub to_mark_sample: Vec<String>,
    pub to_reprieve_sample: Vec<String>,
}

impl Sweep {
    pub fn new(started: OffsetDateTime, reprieve_days: u64) -> Sweep {
        let mark_time = started.replace_nanosecond(0).unwrap_or(started);
        Sweep {
            mark_time,
            reprieve_until: days_after(mark_time, reprieve_days),
            survey: Survey::default(),
            survey_error: None,
            marking_error: None,
            cap_exceeded: false,
            marked: Tally::default(),
            reprieved: Tally::default(),
            write_failures: 0,
            write_errors: Vec::new(),
            to_mark_sample: Vec::new(),
            to_reprieve_sample: Vec::new(),
        }
    }

    pub fn percent(&self) -> f64 {
        let judged = self.survey.judged().count.max(1) as f64;
        self.survey.to_mark.count as f64 * 100.0 / judged
    }
}
