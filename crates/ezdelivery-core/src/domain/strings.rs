//! The macros that give an enum its one table of names: `status_strings!`
//! (a status enum's `as_str`, `ALL` and the traits) and `named_strings!`
//! (`Display`, `FromStr` and serde for any enum with `as_str` and `ALL`, and
//! with the `openapi` feature its OpenAPI schema). A leaf: whatever the
//! expansions name is outside the crate or in this module.

/// Implements `as_str`, `Display` and `FromStr` for a status enum from one
/// table of `Variant => "snake_case"` pairs, so the strings in JSON, in the
/// database and in messages can never drift apart.
macro_rules! status_strings {
    ($ty:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            /// Every status, in lifecycle order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable snake_case name used in JSON and in the database.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),+ }
            }
        }

        $crate::domain::strings::named_strings!($ty);
    };
}
pub(crate) use status_strings;

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` for an
/// enum that names itself with `as_str` and lists itself in `ALL`: it is
/// written and read as that name, and nothing else reads. With the
/// `openapi` feature, also `utoipa::PartialSchema` and `utoipa::ToSchema`:
/// a string schema whose `enum` is every name in `ALL`, so the schema lists
/// exactly the strings serde writes.
macro_rules! named_strings {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|t| t.as_str() == s)
                    .ok_or_else(|| format!("unknown {} `{s}`", stringify!($ty)))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($ty::ALL.iter().map(|t| t.as_str())))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($ty))
            }
        }
    };
}
pub(crate) use named_strings;
