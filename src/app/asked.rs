//! What a digest is asked for with, beyond its schedule and kind: a leaf, so that the
//! files that ask (`desk`, `planned`, `ops`) and the one that makes it (`digests`) import it
//! without importing each other.

use crate::store::{Plan, SubjectTest};

/// Who asked for a digest and what with: an editor (or a token, the command line), a
/// subject test, a send planned for later that is starting. None of them: the scheduler.
#[derive(Default, Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub(crate) by: Option<&'a str>,
    pub(crate) subject_test: Option<&'a SubjectTest>,
    pub(crate) plan: Option<&'a Plan>,
}
