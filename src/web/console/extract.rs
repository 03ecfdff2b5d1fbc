//! The console's forms and path ids: read as every area reads them (`web::extract`), and
//! refused with the console's own pages, so a handler takes `Form(f)` or `Id(id)` and
//! nothing else.

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use super::respond::PageError;
use crate::web::extract::{PathId, StrictForm};

/// A console form; one that cannot be read is the «تعذّرت قراءة النموذج» page.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Form<T>, PageError> {
        let StrictForm(t) = StrictForm::<T>::from_request(req, state).await?;
        Ok(Form(t))
    }
}

/// The `{id}` of a console path (a reader, a send, an account…); one that is not a number
/// is the console's «غير موجود» page.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, PageError> {
        let PathId(id) = PathId::from_request_parts(parts, state).await?;
        Ok(Id(id))
    }
}
