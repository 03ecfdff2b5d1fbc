//! The editor's desk: what an editor set for a schedule's next digest.

use serde::{Deserialize, Serialize};

/// A schedule's next digest as an editor shaped it (`next_digests`). Every field is optional:
/// what is not set is the schedule's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desk {
    /// A subject template, like `[[schedules]] subject`.
    pub subject: Option<String>,
    /// «كلمة التحرير», sanitised HTML.
    pub note_html: Option<String>,
    pub lead: Option<i64>,
    /// Article ids in the editor's order; articles not named follow, newest first.
    pub order: Vec<i64>,
    /// A subject test for the next digest.
    pub subject_test: Option<SubjectTest>,
}

impl Desk {
    pub fn is_empty(&self) -> bool {
        *self == Desk::default()
    }
}

/// The desk as stored, with its version (the time of its last change, ms) and who changed it.
#[derive(Debug, Clone)]
pub struct StoredDesk {
    pub desk: Desk,
    pub version: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

/// Two to four subjects tried on samples of the audience; after `wait_ms` the one whose
/// readers clicked most goes to the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTest {
    pub subjects: Vec<String>,
    /// Each subject's sample, in percent of the audience.
    pub sample_percent: u32,
    /// The fewest readers a subject's sample may have.
    pub min_sample: u32,
    pub wait_ms: i64,
}

/// A send's subject test as it stands: each subject's sample and clicks, and the winner once
/// chosen, with why.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectTestRow {
    pub subjects: Vec<SubjectResult>,
    /// When the winner is (or was) chosen, ms.
    pub decide_at: i64,
    pub winner: Option<i64>,
    pub note: Option<String>,
}

impl SubjectTestRow {
    pub fn new(
        subjects: Vec<String>,
        decide_at: i64,
        winner: Option<i64>,
        note: Option<String>,
    ) -> Self {
        SubjectTestRow {
            subjects: subjects
                .into_iter()
                .map(|subject| SubjectResult {
                    subject,
                    readers: 0,
                    sent: 0,
                    clicked: 0,
                })
                .collect(),
            decide_at,
            winner,
            note,
        }
    }
}

/// One subject of a test: its sample's readers, how many were sent, how many clicked.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectResult {
    pub subject: String,
    pub readers: i64,
    pub sent: i64,
    pub clicked: i64,
}
