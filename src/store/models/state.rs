//! The states the store keeps as text: `text_enum!` turns each into a Rust enum (a typo is a
//! compile error) stored as its lower-case name, and `UnknownState` is what a name the code
//! does not know becomes.

/// A state kept in a TEXT column: a Rust enum here, so a typo is a compile error, and its
/// lower-case name in the database (both engines store it the same way).
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::UnknownState;
            fn from_str(s: &str) -> Result<Self, $crate::store::UnknownState> {
                match s {
                    $($s => Ok($name::$v),)*
                    _ => Err($crate::store::models::state::UnknownState(format!(concat!(stringify!($name), " `{}`"), s))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::store::UnknownState;
            fn try_from(s: String) -> Result<Self, $crate::store::UnknownState> {
                s.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(super) use text_enum;

/// A state name the code does not know (a newer version wrote it, or the data is damaged).
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown state {0}")]
pub struct UnknownState(pub(super) String);
