//! Statuses stored as text. The domain's status enums are the entities' column types: a
//! row is read and written by each status's stored name (`as_str` / `parse` in
//! `domain::status` and `domain::post`, the one table of names), so code compares typed
//! statuses and an unknown name fails where the row is read, naming the type and value.

use sea_orm::sea_query::{self, ArrayType, ColumnType, StringLen, Value, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError};

use crate::domain::post::ApprovalStatus;
use crate::domain::status::{PostStatus, TargetStatus};

/// A status kept in a text column under its stored name.
pub trait StoredName: Sized + Copy + 'static {
    /// The type's name, for errors.
    const TYPE: &'static str;
    /// The status stored as `name`.
    fn from_stored_name(name: &str) -> Option<Self>;

    /// Parses `name`, or an error naming the type and the value.
    fn read(name: &str) -> Result<Self, DbErr> {
        Self::from_stored_name(name)
            .ok_or_else(|| DbErr::Type(format!("unknown {} {name:?}", Self::TYPE)))
    }
}

/// Makes each status a sea-orm column type (as `DeriveActiveEnum` would for a string
/// enum, but from the domain's own names) and a serde string.
macro_rules! stored_as_text {
    ($($ty:ident),+ $(,)?) => {$(
        impl StoredName for $ty {
            const TYPE: &'static str = stringify!($ty);
            fn from_stored_name(name: &str) -> Option<Self> {
                Self::parse(name)
            }
        }

        impl From<$ty> for Value {
            fn from(status: $ty) -> Value {
                status.as_str().into()
            }
        }

        impl sea_orm::TryGetable for $ty {
            fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
                let name = String::try_get_by(res, index)?;
                <Self as StoredName>::read(&name).map_err(TryGetError::DbErr)
            }
        }

        impl sea_query::ValueType for $ty {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                let name = <String as sea_query::ValueType>::try_from(value)?;
                Self::parse(&name).ok_or(ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::N(32))
            }
        }

        impl sea_query::Nullable for $ty {
            fn null() -> Value {
                Value::String(None)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {name:?}", stringify!($ty)))
                })
            }
        }
    )+};
}

stored_as_text!(TargetStatus, PostStatus, ApprovalStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::ValueType;

    #[test]
    fn stored_names_round_trip() {
        for status in TargetStatus::ALL {
            let value: Value = status.into();
            assert_eq!(value, Value::from(status.as_str()));
            assert_eq!(
                <TargetStatus as ValueType>::try_from(value).ok(),
                Some(status)
            );
            let json = serde_json::to_value(status).expect("serialises");
            assert_eq!(json, serde_json::json!(status.as_str()));
            assert_eq!(
                serde_json::from_value::<TargetStatus>(json).ok(),
                Some(status)
            );
        }
        for status in PostStatus::ALL {
            assert_eq!(PostStatus::read(status.as_str()).ok(), Some(status));
        }
        for status in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::read(status.as_str()).ok(), Some(status));
        }
    }

    #[test]
    fn unknown_names_are_errors_that_name_the_type() {
        let error = TargetStatus::read("lost").expect_err("unknown");
        assert!(
            error.to_string().contains("TargetStatus \"lost\""),
            "{error}"
        );
        assert!(serde_json::from_value::<PostStatus>(serde_json::json!("lost")).is_err());
    }
}
