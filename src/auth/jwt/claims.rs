//! A verified token's claims (protocol §8) checked and turned into a
//! [`Grant`]: `sub` and `exp` required; `nbf` and `iat` not in the future;
//! `aud` and `iss` when configured; `name`, `rooms`, `perm`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::JwtFailure;
use crate::auth::grant::{display_name, valid_user, Grant, Perm, RoomSet};

/// What the settings require of every token.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Accepted `aud` values; empty: not checked.
    pub audience: Vec<String>,
    /// Accepted `iss` values; empty: not checked.
    pub issuer: Vec<String>,
    pub leeway: Duration,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn any(&self, accepted: &[String]) -> bool {
        match self {
            OneOrMany::One(v) => accepted.contains(v),
            OneOrMany::Many(vs) => vs.iter().any(|v| accepted.contains(v)),
        }
    }
}

/// The claims ws-chat reads; any other claim is ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    aud: Option<OneOrMany>,
    iss: Option<String>,
    name: Option<String>,
    rooms: Option<Vec<String>>,
    perm: Option<Vec<String>>,
}

/// A NumericDate (seconds since the epoch, maybe fractional) as a time.
fn time(seconds: f64) -> Option<SystemTime> {
    (seconds.is_finite() && (0.0..1e11).contains(&seconds))
        .then(|| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

/// Checks the claims of a token whose signature is good, at `now`.
pub fn grant(
    claims: serde_json::Map<String, serde_json::Value>,
    rules: &Rules,
    now: SystemTime,
) -> Result<Grant, JwtFailure> {
    let claims: Claims = serde_json::from_value(serde_json::Value::Object(claims))
        .map_err(|_| JwtFailure::Claims)?;
    let sub = claims
        .sub
        .filter(|s| valid_user(s))
        .ok_or(JwtFailure::Claims)?;
    let exp = claims.exp.and_then(time).ok_or(JwtFailure::Claims)?;
    if now > exp + rules.leeway {
        return Err(JwtFailure::Expired);
    }
    for at in [claims.nbf, claims.iat].into_iter().flatten() {
        let at = time(at).ok_or(JwtFailure::Claims)?;
        if at > now + rules.leeway {
            return Err(JwtFailure::NotYetValid);
        }
    }
    if !rules.issuer.is_empty() && !claims.iss.is_some_and(|iss| rules.issuer.contains(&iss)) {
        return Err(JwtFailure::Issuer);
    }
    if !rules.audience.is_empty() && !claims.aud.is_some_and(|aud| aud.any(&rules.audience)) {
        return Err(JwtFailure::Audience);
    }
    let rooms = match claims.rooms {
        Some(r) => Some(RoomSet::parse(&r).map_err(|_| JwtFailure::Claims)?),
        None => None,
    };
    let perm = match claims.perm {
        Some(p) => Perm::parse(&p).map_err(|_| JwtFailure::Claims)?,
        None => Perm::DEFAULT,
    };
    // The token's name, else its sub when that is a valid name; else the
    // client's `?name=` decides, as for a guest.
    let name = claims
        .name
        .as_deref()
        .and_then(display_name)
        .or_else(|| display_name(&sub));
    Ok(Grant {
        user: Some(Arc::from(sub)),
        name,
        rooms,
        perm,
        expires: Some(exp),
        loopback_only: false,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(claims: serde_json::Value, rules: &Rules) -> Result<Grant, JwtFailure> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        match claims {
            serde_json::Value::Object(map) => grant(map, rules, now),
            _ => unreachable!(),
        }
    }

    #[test]
    fn claims_decide_the_grant_and_each_failure_has_its_reason() {
        let rules = Rules {
            audience: vec!["chat".into()],
            issuer: vec!["https://id.example".into()],
            leeway: Duration::from_secs(5),
        };
        let ok = json!({"sub": "u-1", "exp": 1_000_100, "aud": ["x", "chat"],
            "iss": "https://id.example", "name": "Ana", "rooms": ["support-*"], "perm": ["read"]});
        let g = check(ok.clone(), &rules).unwrap();
        assert_eq!(g.user.as_deref(), Some("u-1"));
        assert_eq!(g.name.as_deref(), Some("Ana"));
        assert!(g.admits("support-7") && !g.admits("lobby") && !g.can_write());
        let with = |key: &str, value: serde_json::Value| {
            let mut c = ok.clone();
            c[key] = value;
            check(c, &rules)
        };
        assert_eq!(
            with("exp", json!(999_990)).unwrap_err(),
            JwtFailure::Expired
        );
        assert!(with("exp", json!(999_996)).is_ok(), "within the leeway");
        assert_eq!(with("exp", json!("soon")).unwrap_err(), JwtFailure::Claims);
        assert_eq!(
            with("nbf", json!(1_000_010)).unwrap_err(),
            JwtFailure::NotYetValid
        );
        assert_eq!(
            with("iat", json!(1_000_010)).unwrap_err(),
            JwtFailure::NotYetValid
        );
        assert_eq!(
            with("aud", json!("other")).unwrap_err(),
            JwtFailure::Audience
        );
        assert_eq!(
            with("iss", json!("https://evil")).unwrap_err(),
            JwtFailure::Issuer
        );
        assert_eq!(with("sub", json!("")).unwrap_err(), JwtFailure::Claims);
        assert_eq!(
            with("sub", json!("x".repeat(65))).unwrap_err(),
            JwtFailure::Claims
        );
        assert_eq!(
            with("perm", json!(["root"])).unwrap_err(),
            JwtFailure::Claims
        );
        assert_eq!(
            with("rooms", json!(["a b"])).unwrap_err(),
            JwtFailure::Claims
        );
        // The name falls back to the sub, then to the client's choice.
        assert_eq!(
            with("name", json!("<b>")).unwrap().name.as_deref(),
            Some("u-1")
        );
        let mut c = ok.clone();
        c["sub"] = json!("auth0|42");
        c.as_object_mut().unwrap().remove("name");
        assert_eq!(check(c, &rules).unwrap().name, None);
        let mut c = ok;
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(c, &rules).unwrap_err(), JwtFailure::Claims);
    }
}
