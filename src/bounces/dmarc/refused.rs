//! Why a DMARC report was not stored. Each reason names a limit or a part of the format,
//! never a value from the report, so it can be logged as it is.

/// A report that cannot be read; the mail carrying it is set aside as read, not retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the attachment is {0} bytes, over the limit of {max} bytes", max = super::limits::MAX_ATTACHMENT)]
    AttachmentTooLarge(usize),
    #[error("the report expands past {max} bytes (a zip or gzip bomb?); stopped reading there", max = super::limits::MAX_XML)]
    TooLarge,
    #[error("{0}")]
    Corrupt(&'static str),
    #[error("the XML is not well-formed ({0})")]
    Xml(String),
    #[error("the XML nests deeper than {max} elements", max = super::limits::MAX_DEPTH)]
    TooDeep,
    #[error("the report has more than {max} records", max = super::limits::MAX_RECORDS)]
    TooManyRecords,
    #[error("not a DMARC aggregate report: {0}")]
    NotAReport(&'static str),
    #[error("a {0} is missing or invalid")]
    Field(&'static str),
}
