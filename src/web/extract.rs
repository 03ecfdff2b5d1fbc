//! What a request carries, read once and strictly: a form or JSON body, and the `{id}` of a
//! path. Handlers take these instead of bytes to parse, so every form is checked the same
//! way (escapes, UTF-8, NUL) and every id that is not a number is the same "not found".
//!
//! Each area answers a refusal in its own voice (the console's Arabic page, the API's JSON),
//! so the errors here are typed and each area's error type converts them; what axum itself
//! could not read ([`Unread`]) is answered as axum answers it, in every area.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, OptionalFromRequest, Path, Request,
        rejection::{BytesRejection, PathRejection},
    },
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{
    Deserialize, Deserializer,
    de::{
        DeserializeOwned, IntoDeserializer, SeqAccess, Visitor,
        value::{Error as DeError, MapDeserializer, SeqDeserializer},
    },
};

/// What axum could not read before any check of ours: a body too large or cut off, a path
/// that is not UTF-8.
#[derive(Debug, thiserror::Error)]
pub enum Unread {
    #[error(transparent)]
    Body(#[from] BytesRejection),
    #[error(transparent)]
    Path(#[from] PathRejection),
}

impl IntoResponse for Unread {
    fn into_response(self) -> Response {
        match self {
            Unread::Body(r) => r.into_response(),
            Unread::Path(r) => r.into_response(),
        }
    }
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Unread(#[from] Unread),
    /// Not strictly a form: a stray `%`, invalid UTF-8, a NUL, or not the fields expected.
    #[error("the form cannot be read")]
    Form,
    /// Not JSON for the type (serde's reason), or a string with a NUL.
    #[error("{0}")]
    Json(String),
}

impl From<BytesRejection> for BodyError {
    fn from(r: BytesRejection) -> BodyError {
        BodyError::Unread(r.into())
    }
}

/// A bare answer, for a handler that takes the extractor without its area's conversion.
impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::Unread(u) => u.into_response(),
            e => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }
}

/// Why the path's `{id}` names nothing.
#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error(transparent)]
    Unread(#[from] Unread),
    #[error("the path's id is not a number")]
    NotANumber,
}

impl IntoResponse for IdError {
    fn into_response(self) -> Response {
        match self {
            IdError::Unread(u) => u.into_response(),
            IdError::NotANumber => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

/// An `application/x-www-form-urlencoded` body, read by [`decode_form`]. Its size is bounded
/// by the router's limit (413 past it); `MAX`, when given, is a tighter bound past which the
/// form is refused as unreadable.
pub struct StrictForm<T, const MAX: usize = { usize::MAX }>(pub T);

impl<T, S, const MAX: usize> FromRequest<S> for StrictForm<T, MAX>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, BodyError> {
        let body = Bytes::from_request(req, state).await?;
        if body.len() > MAX {
            return Err(BodyError::Form);
        }
        decode_form(&body).map(StrictForm)
    }
}

/// A JSON body, read by [`decode_json`] whatever its `Content-Type` (scripts forget it).
pub struct StrictJson<T>(pub T);

impl<T, S> FromRequest<S> for StrictJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, BodyError> {
        let body = Bytes::from_request(req, state).await?;
        decode_json(&body).map(StrictJson).map_err(BodyError::Json)
    }
}

/// `Option<StrictJson<T>>`: an empty body is `None` (a call that needs no parameters).
impl<T, S> OptionalFromRequest<S> for StrictJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, BodyError> {
        let body = Bytes::from_request(req, state).await?;
        if body.is_empty() {
            return Ok(None);
        }
        decode_json(&body)
            .map(|t| Some(StrictJson(t)))
            .map_err(BodyError::Json)
    }
}

/// A body read by [`JsonOrForm`]: what it deserialises into, and which of its fields a NUL
/// empties instead of refusing the whole body.
pub trait BodyFields: DeserializeOwned {
    /// Fields the reader's browser fills by itself rather than the reader (the sign-up's
    /// `tz`): a forged value there costs that field only (it is read as absent), never the
    /// reader's sign-up. A NUL in any other field still refuses the body.
    const DROPPED_WITH_NUL: &'static [&'static str] = &[];
}

/// A body that is JSON when the request says so (`Content-Type: application/json`), a form
/// otherwise; `json` says which, so the answer comes back in the same kind. A field that
/// may repeat in the form is a [`Repeated`]; any other field given twice keeps its last
/// value.
pub struct JsonOrForm<T> {
    pub value: T,
    pub json: bool,
}

impl<T, S> FromRequest<S> for JsonOrForm<T>
where
    T: BodyFields,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, BodyError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = Bytes::from_request(req, state).await?;
        let value = if json {
            decode_json_dropping(&body, T::DROPPED_WITH_NUL).map_err(BodyError::Json)?
        } else {
            decode_form_fields(&body, T::DROPPED_WITH_NUL)?
        };
        Ok(JsonOrForm { value, json })
    }
}

/// The `{id}` of a path such as `/sends/{id}/pause`, as a number.
pub struct PathId(pub i64);

#[derive(Deserialize)]
struct IdParam {
    id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = IdError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, IdError> {
        let Path(IdParam { id }) = Path::<IdParam>::from_request_parts(parts, state)
            .await
            .map_err(Unread::from)?;
        id.parse().map(PathId).map_err(|_| IdError::NotANumber)
    }
}

/// An `application/x-www-form-urlencoded` body. serde_urlencoded turns invalid UTF-8 into
/// U+FFFD without a word and lets a stray `%` through: both are refused first.
pub(crate) fn decode_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    check_form(body)?;
    serde_urlencoded::from_bytes(body).map_err(|_| BodyError::Form)
}

fn check_form(body: &[u8]) -> Result<(), BodyError> {
    let decoded = check_escapes(body)?;
    // No text of ours holds a NUL, and PostgreSQL refuses one.
    if decoded.contains(&0) {
        return Err(BodyError::Form);
    }
    Ok(())
}

/// Every `%` starts an escape and the decoded body is UTF-8; the decoded bytes.
fn check_escapes(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'%' => {
                let hex = body.get(i + 1..i + 3).ok_or(BodyError::Form)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(BodyError::Form);
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(body).collect();
    std::str::from_utf8(&decoded).map_err(|_| BodyError::Form)?;
    Ok(decoded)
}

/// A form read field by field, each with every value it was given (see [`JsonOrForm`]); a
/// value of a field in `dropped` that holds a NUL is left out, any other NUL refuses it.
fn decode_form_fields<T: DeserializeOwned>(body: &[u8], dropped: &[&str]) -> Result<T, BodyError> {
    check_escapes(body)?;
    let mut fields: Vec<(String, Values)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if v.contains('\0') && dropped.contains(&k.as_ref()) {
            continue;
        }
        // No text of ours holds a NUL, and PostgreSQL refuses one.
        if k.contains('\0') || v.contains('\0') {
            return Err(BodyError::Form);
        }
        match fields.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.0.push(v.into_owned()),
            None => fields.push((k.into_owned(), Values(vec![v.into_owned()]))),
        }
    }
    T::deserialize(MapDeserializer::<_, DeError>::new(fields.into_iter()))
        .map_err(|_| BodyError::Form)
}

/// A JSON body, refused (with serde's reason) when it is not JSON for `T` or when any of its
/// strings holds a NUL: no text of ours has one, and PostgreSQL refuses it.
pub(crate) fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    decode_json_dropping(body, &[])
}

/// [`decode_json`], but a top-level field in `dropped` whose value holds a NUL is left out
/// (see [`BodyFields`]).
fn decode_json_dropping<T: DeserializeOwned>(body: &[u8], dropped: &[&str]) -> Result<T, String> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(o) = &mut v {
        o.retain(|k, v| !(dropped.contains(&k.as_str()) && has_nul(v)));
    }
    if has_nul(&v) {
        return Err("a string holds a NUL character (\\u0000)".into());
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Every value a form gave a field that may repeat (`schedule=daily&schedule=weekly`); a
/// JSON body gives it one string, as before forms could repeat it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repeated(pub Vec<String>);

/// The name by which a form's field values know a [`Repeated`] is asking for all of them.
const REPEATED: &str = "nashra::Repeated";

impl<'de> Deserialize<'de> for Repeated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Repeated, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Repeated;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }

            /// JSON: one string.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Repeated, D::Error> {
                String::deserialize(d).map(|s| Repeated(vec![s]))
            }

            /// A form: every value of the field.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Repeated, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element()? {
                    all.push(s);
                }
                Ok(Repeated(all))
            }
        }
        d.deserialize_newtype_struct(REPEATED, V)
    }
}

/// A form field's values: the last one for a plain field, all of them for a [`Repeated`].
struct Values(Vec<String>);

impl<'de> IntoDeserializer<'de, DeError> for Values {
    type Deserializer = Values;

    fn into_deserializer(self) -> Values {
        self
    }
}

impl<'de> Deserializer<'de> for Values {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.0.pop().unwrap_or_default())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == REPEATED {
            visitor.visit_seq(SeqDeserializer::new(self.0.into_iter()))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct F {
        email: String,
        name: String,
    }

    #[test]
    fn form_decoding() {
        let f: F = decode_form(b"email=a%40b.org&name=%D9%86+x&x").unwrap();
        assert_eq!(
            f,
            F {
                email: "a@b.org".into(),
                name: "ن x".into()
            }
        );
        for bad in [
            &b"email=%ZZ"[..],
            b"email=%4",
            b"email=%FF",
            b"name=%D9&x=%86",
            b"name=a%00b",
        ] {
            assert!(
                matches!(decode_form::<F>(bad), Err(BodyError::Form)),
                "{bad:?}"
            );
        }
        let f: F = decode_form(b"email=a%0D%0Ab").unwrap();
        assert_eq!(
            f.email, "a\r\nb",
            "decoded as sent; the address check refuses it"
        );
    }

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct S {
        email: String,
        t: Option<String>,
        schedule: Repeated,
    }

    #[test]
    fn a_repeated_field_keeps_every_value_and_a_plain_one_its_last() {
        let s: S = decode_form_fields(
            b"schedule=daily&email=a%40b.org&schedule=weekly&email=c%40d.org&t=1",
            &[],
        )
        .unwrap();
        assert_eq!(s.email, "c@d.org");
        assert_eq!(s.t.as_deref(), Some("1"));
        assert_eq!(s.schedule, Repeated(vec!["daily".into(), "weekly".into()]));
        let s: S = decode_form_fields(b"email=a%40b.org", &[]).unwrap();
        assert_eq!(s.schedule, Repeated(vec![]));
        assert!(matches!(
            decode_form_fields::<S>(b"email=%FF", &[]),
            Err(BodyError::Form)
        ));
    }

    #[test]
    fn a_nul_empties_a_dropped_field_and_refuses_any_other() {
        let s: S = decode_form_fields(b"email=a%40b.org&t=x%00y", &["t"]).unwrap();
        assert_eq!((s.email.as_str(), s.t), ("a@b.org", None));
        let s: S = decode_form_fields(b"t=1&email=a%40b.org&t=x%00y", &["t"]).unwrap();
        assert_eq!(s.t.as_deref(), Some("1"), "the value without a NUL stays");
        for bad in [&b"email=a%00b&t=x%00"[..], b"t%00=1", b"email=%FF&t=1"] {
            assert!(
                matches!(decode_form_fields::<S>(bad, &["t"]), Err(BodyError::Form)),
                "{bad:?}"
            );
        }
        let s: S = decode_json_dropping(br#"{"email":"a@b.org","t":"x\u0000"}"#, &["t"]).unwrap();
        assert_eq!((s.email.as_str(), s.t), ("a@b.org", None));
        assert!(decode_json_dropping::<S>(br#"{"email":"a\u0000","t":"1"}"#, &["t"]).is_err());
        assert!(decode_json::<S>(br#"{"t":"x\u0000"}"#).is_err());
    }

    #[test]
    fn json_names_one_schedule_as_a_string() {
        let s: S = decode_json(br#"{"email":"a@b.org","schedule":"daily"}"#).unwrap();
        assert_eq!(s.schedule, Repeated(vec!["daily".into()]));
        assert!(decode_json::<S>(br#"{"schedule":["daily"]}"#).is_err());
        assert!(decode_json::<S>(br#"{"email":"a\u0000b"}"#).is_err());
    }
}
