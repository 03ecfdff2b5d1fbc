//! How a console page answers when it does not render: [`PageError`], an Arabic page for
//! each way an operation is refused or fails, and the redirect after a form with its
//! one-line message ([`done`]).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::view;
use crate::{
    app::{OpError, Refusal},
    web::extract::{BodyError, IdError, Unread},
};

/// Why a console page could not do what was asked, shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("bad form")]
    Form,
    /// What axum could not read: its own answer, as for any route.
    #[error(transparent)]
    Unread(#[from] Unread),
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        PageError::Op(OpError::Store(e))
    }
}

impl From<Refusal> for PageError {
    fn from(r: Refusal) -> PageError {
        PageError::Op(OpError::Refused(r))
    }
}

impl From<BodyError> for PageError {
    fn from(e: BodyError) -> PageError {
        match e {
            BodyError::Unread(u) => PageError::Unread(u),
            BodyError::Form | BodyError::Json(_) => PageError::Form,
        }
    }
}

/// An id that is not a number names nothing.
impl From<IdError> for PageError {
    fn from(e: IdError) -> PageError {
        match e {
            IdError::Unread(u) => PageError::Unread(u),
            IdError::NotANumber => PageError::Op(OpError::NotFound("page")),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Op(OpError::Forbidden(role)) => (
                StatusCode::FORBIDDEN,
                "ليست لديك الصلاحية",
                format!(
                    "هذا الإجراء يحتاج دور «{}» أو أعلى. اطلب ذلك من مالك الحساب.",
                    view::role_label(role)
                ),
            ),
            PageError::Op(OpError::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "غير موجود",
                "لم نجد ما تبحث عنه: ربما حُذف أو أن الرابط غير صحيح.".into(),
            ),
            PageError::Op(OpError::InvalidState(s)) => (
                StatusCode::CONFLICT,
                "لا يمكن الآن",
                format!(
                    "حالة الإرسال الآن «{}»، ولا تسمح بهذا الإجراء.",
                    view::send_status_label(s)
                ),
            ),
            PageError::Op(OpError::Refused(r)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "تعذّر التنفيذ", r.arabic())
            }
            PageError::Form => (
                StatusCode::BAD_REQUEST,
                "تعذّرت قراءة النموذج",
                "تعذّرت قراءة ما أرسلته. عد إلى الصفحة السابقة وأعد المحاولة.".into(),
            ),
            PageError::Op(OpError::Store(e)) => {
                tracing::error!(error = %format!("{e:#}"), "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "عطل لدينا",
                    "حدث عطل أثناء تنفيذ طلبك. أعد المحاولة بعد قليل.".into(),
                )
            }
            PageError::Unread(u) => return u.into_response(),
        };
        view::render_error(status, title, &message)
    }
}

/// A redirect after a POST, with a message to show (`?done=KEY`, a fixed text per key).
pub fn done(path: &str, key: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={key}")).into_response()
}

/// A console path nobody serves.
pub fn not_found_page() -> Response {
    view::render_error(
        StatusCode::NOT_FOUND,
        "الصفحة غير موجودة",
        "لا توجد في لوحة التحكم صفحة بهذا العنوان.",
    )
}
