//! Rendering: the digest (HTML and plain text), the confirmation and welcome emails and the
//! public pages.
//!
//! A digest is rendered once with slots where a recipient's own data goes (the unsubscribe
//! link, the name in the greeting) and where its own archive link goes; delivery fills them
//! in (see `delivery::message` and `slots`). The public web copy is rendered beside the
//! email, without the email's personal footer. `renderer` drives the templates, `views` is
//! what they are given, `text` the helpers that shape an article's words, `calendar` and
//! `when` the dates and schedules in words, `welcome` what a new reader chose in words, `bidi`
//! and `plural` Arabic's direction and counts.

mod bidi;
pub mod calendar;
mod inline;
mod note;
mod plural;
mod renderer;
mod slots;
mod text;
mod views;
mod welcome;
mod when;

pub use bidi::{escape_html, ltr_runs, rtl_plain_text, wrap_latin};
pub use calendar::{arabic_date, arabic_date_time};
pub use note::{MAX_NOTE, note_for_editing, sanitize_note};
pub use plural::{
    HOUR, LINE, MINUTE, Noun, READER, READER_AFTER, RESULT, SECOND, count_ar, count_ar_as,
};
pub use renderer::{Renderer, Shaping};
pub use slots::SlotMarkers;
pub use text::{excerpt, html_to_text, strip_bidi_controls, truncate_words};
pub use views::{ChoiceGroup, ChoiceOption, ChoiceSelect, LinkItem, Page, PageEntry};
pub use welcome::WelcomeReader;
pub use when::{cron_in_words_of, schedule_in_words};
