//! `Authorization: Bearer <key>` authentication and role checks.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::store::keys::{Principal, Role};

/// The caller behind the request's bearer key, if it sent one.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller(None));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into())
            })?;
        match state.store.authenticate(key).await? {
            Some(principal) => Ok(Caller(Some(principal))),
            None => Err(ApiError::Unauthorized(
                "the API key is unknown or revoked".into(),
            )),
        }
    }
}

impl Caller {
    /// The principal, if its role is one of `roles`: 401 without a key, 403
    /// with a key of another role.
    pub fn require(&self, roles: &[Role], action: &str) -> Result<&Principal, ApiError> {
        let principal = self.0.as_ref().ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "{action} requires an API key: send `Authorization: Bearer <key>`"
            ))
        })?;
        if roles.contains(&principal.role) {
            Ok(principal)
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "{action} needs one of the roles {}; this key has the role {}",
                allowed.join(", "),
                principal.role.as_str()
            )))
        }
    }

    /// Gate of the stateless computation endpoints: open unless the server is
    /// configured to require a key for them.
    pub fn for_compute(&self, state: &AppState) -> Result<(), ApiError> {
        if state.config.require_key_for_compute {
            self.require(
                &[Role::Admin, Role::Instructor, Role::Grader, Role::Viewer],
                "this computation",
            )?;
        }
        Ok(())
    }
}

/// Who may do an action: checked before the body is read, so an
/// unauthenticated caller gets 401 whatever it sent.
pub trait Policy {
    const ROLES: &'static [Role];
    const ACTION: &'static str;
}

/// A caller whose key has one of `P::ROLES`.
#[derive(Debug, Clone)]
pub struct Authed<P> {
    pub principal: Principal,
    policy: PhantomData<P>,
}

impl<P: Policy + Send + Sync> FromRequestParts<AppState> for Authed<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let principal = caller.require(P::ROLES, P::ACTION)?.clone();
        Ok(Authed {
            principal,
            policy: PhantomData,
        })
    }
}

macro_rules! policy {
    ($(#[$doc:meta])* $name:ident, $action:literal, [$($role:ident),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Policy for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),+];
            const ACTION: &'static str = $action;
        }
    };
}

policy!(
    /// Managing API keys.
    Admins, "managing API keys", [Admin]
);
policy!(
    /// Writing rubrics.
    Authors, "writing rubrics", [Admin, Instructor]
);
policy!(
    /// Reading stored rubrics, submissions and grades.
    Readers, "reading stored data", [Admin, Instructor, Grader, Viewer]
);
policy!(
    /// Submitting answers for grading and storage.
    Submitters, "submitting answers", [Admin, Instructor, Grader]
);
