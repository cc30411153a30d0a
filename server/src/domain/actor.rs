//! The authenticated caller of an operation and the roles it holds.

use crate::error::AppError;

/// A role granted by the `roles` claim of the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May approve or reject the posts of its tenant.
    Approver,
    /// May operate the publishing queue.
    Admin,
}

impl Role {
    /// Parses a role name as it appears in a token; unknown names are ignored by callers.
    pub fn from_claim(name: &str) -> Option<Self> {
        match name {
            "approver" => Some(Self::Approver),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The role's name in tokens and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }
}

/// A tenant's id as stored (`owner_id`) and used in every cache key: `org:<org>` for an
/// organisation, `user:<sub>` for a user acting alone, so a user named like an
/// organisation never shares its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// The prefix of organisation tenants.
    pub const ORG: &'static str = "org:";
    /// The prefix of single-user tenants.
    pub const USER: &'static str = "user:";

    /// The tenant of the organisation `org` (the token's `org` claim).
    pub fn org(org: &str) -> Self {
        Self(format!("{}{org}", Self::ORG))
    }

    /// The tenant of a user acting alone (a token without `org`).
    pub fn user(sub: &str) -> Self {
        Self(format!("{}{sub}", Self::USER))
    }

    /// The stored form.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who is acting: the user (`sub`) and the tenant (`org`, or the user itself) it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The acting user, recorded as `created_by`.
    pub user_id: String,
    /// The tenant that owns what the user creates, recorded as `owner_id`: a
    /// [`TenantId`] in its stored form.
    pub tenant_id: String,
    /// Roles granted to the user within its tenant.
    pub roles: Vec<Role>,
    /// Whether the user is one of the instance's operators (`HERALD_OPERATORS`), who alone
    /// may act on the whole instance's queue.
    pub operator: bool,
}

impl Actor {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `FORBIDDEN` unless the caller is an instance operator.
    pub fn require_operator(&self) -> Result<(), AppError> {
        if self.operator {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "this operation acts on the whole instance: only its operators \
                 (HERALD_OPERATORS) may"
                    .into(),
            ))
        }
    }

    /// `FORBIDDEN` unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this operation needs the `{}` role",
                role.as_str()
            )))
        }
    }
}
