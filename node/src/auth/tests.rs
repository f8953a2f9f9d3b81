use super::*;

fn principal(grants: &[(&str, Role)]) -> Principal {
    Principal {
        user: "alice".into(),
        grants: grants.iter().map(|(s, role)| Grant { scope: Scope::from(s.to_string()), role: *role }).collect(),
    }
}

#[test]
fn authorize_follows_the_role_table() {
    use Action::*;
    let reader_a = principal(&[("a", Role::Read)]);
    let writer_a = principal(&[("a", Role::Write)]);
    let admin_a = principal(&[("a", Role::Admin)]);
    let admin_all = principal(&[("*", Role::Admin)]);
    let writer_all = principal(&[("*", Role::Write)]);
    let nobody = principal(&[]);
    // (principal, keyspace, action, allowed)
    let table: &[(&Principal, Option<&str>, Action, bool)] = &[
        (&reader_a, Some("a"), Read, true),
        (&reader_a, Some("a"), Write, false),
        (&reader_a, Some("b"), Read, false),
        (&writer_a, Some("a"), Read, true),
        (&writer_a, Some("a"), Write, true),
        (&writer_a, Some("b"), Write, false),
        (&writer_a, Some("a"), DropKeyspace, false),
        (&admin_a, Some("a"), AlterKeyspace, true),
        (&admin_a, Some("a"), DropKeyspace, true),
        (&admin_a, Some("b"), AlterKeyspace, false),
        (&admin_a, None, CreateKeyspace, false),
        (&admin_a, None, Decommission, false),
        (&admin_a, Some("a"), ManageUsers, false),
        (&writer_all, Some("zzz"), Write, true),
        (&writer_all, None, Decommission, false),
        (&writer_all, None, Repair, false),
        (&admin_all, None, Decommission, true),
        (&admin_all, None, RemoveNode, true),
        (&admin_all, None, Drain, true),
        (&admin_all, None, Snapshot, true),
        (&admin_all, None, ManageUsers, true),
        (&admin_all, Some("any"), Write, true),
        (&nobody, None, Describe, true),
        (&nobody, Some("a"), Read, false),
        (&writer_a, None, Write, false),
    ];
    for (p, ks, action, allowed) in table {
        let got = authorize(p, *ks, *action);
        assert_eq!(got.is_ok(), *allowed, "{:?} {ks:?} {action:?}: {got:?}", p.grants);
        if let Err(e) = got {
            assert_eq!(e.code(), "RKV-PERMISSION-DENIED");
            assert!(!e.is_unauthenticated());
        }
    }
}

#[test]
fn an_empty_keyspace_name_means_default() {
    let p = principal(&[(crate::DEFAULT_KEYSPACE, Role::Read)]);
    assert!(authorize(&p, Some(""), Action::Read).is_ok());
    assert!(authorize(&p, Some(""), Action::Write).is_err());
}

#[test]
fn roles_parse_and_scopes_round_trip() {
    assert_eq!(Role::parse("write"), Ok(Role::Write));
    assert!(matches!(Role::parse("root"), Err(AuthError::UnknownRole { .. })));
    let grant = Grant { scope: Scope::All, role: Role::Admin };
    let json = serde_json::to_string(&grant).unwrap_or_default();
    assert_eq!(json, r#"{"scope":"*","role":"admin"}"#);
    assert_eq!(serde_json::from_str::<Grant>(&json).ok(), Some(grant));
}

fn issued(user: &str) -> IssuedToken {
    IssuedToken::generate(user).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tokens_parse_from_bearer_and_resp_to_the_same_credentials() {
    let token = issued("bob");
    let text = token.expose();
    let (user, secret) = text.split_once('.').unwrap_or_default();
    assert_eq!((user, secret.len()), ("bob", token::SECRET_CHARS));
    let from_token = Credentials::parse_token(&text).unwrap_or_else(|e| panic!("{e}"));
    let from_bearer = Credentials::parse_bearer(&format!("Bearer {text}")).unwrap_or_else(|e| panic!("{e}"));
    let from_resp = Credentials::from_user_password("bob", secret).unwrap_or_else(|e| panic!("{e}"));
    let from_resp_whole = Credentials::from_user_password("bob", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_token, token.credentials);
    assert_eq!(from_bearer, from_token);
    assert_eq!(from_resp, from_token);
    assert_eq!(from_resp_whole, from_token);
    assert_ne!(issued("bob").expose(), text, "two tokens differ");
}

#[test]
fn malformed_tokens_are_refused_without_echoing_them() {
    let good = issued("bob").expose();
    let secret = good.split_once('.').map(|(_, s)| s.to_owned()).unwrap_or_default();
    let bad = [
        String::new(),
        "nodot".into(),
        format!("bob.{}", &secret[1..]),
        format!("bob.{secret}A"),
        format!("bo b.{secret}"),
        format!(".{secret}"),
        format!("bob.{}", secret.replace(|c: char| c.is_ascii_alphanumeric(), "+")),
        format!("bob.{secret}.x"),
    ];
    for token in &bad {
        let err = Credentials::parse_token(token).err().unwrap_or_else(|| panic!("accepted {token:?}"));
        assert_eq!(err.code(), "RKV-BAD-TOKEN", "{token:?}");
        assert!(secret.len() < 8 || !err.to_string().contains(&secret[..8]), "error echoes the secret: {err}");
    }
    assert!(Credentials::parse_bearer(&format!("Basic {good}")).is_err());
    assert!(Credentials::parse_bearer(&good).is_err(), "no scheme");
    assert!(Credentials::from_user_password("eve", &good).is_err(), "a token of another user");
}

#[test]
fn verify_accepts_current_and_previous_secret_during_rotation_only() {
    let first = issued("carol");
    let mut user = UserDef::new("carol", Some(first.hash()), []).unwrap_or_else(|e| panic!("{e}"));
    assert!(user.verify(&first.credentials));
    let second = issued("carol");
    assert!(!user.verify(&second.credentials), "a random secret does not verify");
    user.rotate(second.hash());
    assert!(user.verify(&first.credentials) && user.verify(&second.credentials), "both during rotation");
    let third = issued("carol");
    user.rotate(third.hash());
    assert_eq!(user.secrets.len(), user::MAX_SECRETS);
    assert!(!user.verify(&first.credentials), "the oldest is dropped");
    user.retire_previous();
    assert!(!user.verify(&second.credentials) && user.verify(&third.credentials));
    let other = Credentials { user: "mallory".into(), secret: third.credentials.secret.clone() };
    assert!(!user.verify(&other), "the name must match too");
    let lookup = |name: &str| (name == "carol").then(|| user.clone());
    assert_eq!(authenticate(&third.credentials, lookup).map(|p| p.user), Ok("carol".into()));
    let denied = authenticate(&second.credentials, lookup).err();
    assert_eq!(denied.as_ref().map(AuthError::code), Some("RKV-INVALID-CREDENTIALS"));
    assert!(denied.is_some_and(|e| e.is_unauthenticated()));
}

#[test]
fn debug_output_redacts_every_secret() {
    let token = issued("dave");
    let text = token.expose();
    let secret = text.split_once('.').map(|(_, s)| s.to_owned()).unwrap_or_default();
    let hash = token.hash();
    let user = UserDef::new("dave", Some(hash.clone()), []).unwrap_or_else(|e| panic!("{e}"));
    let stored = serde_json::to_string(&hash).unwrap_or_default();
    let debugs = [
        format!("{token:?}"),
        format!("{:?}", token.credentials),
        format!("{:?}", token.credentials.secret),
        format!("{hash:?}"),
        format!("{user:?}"),
    ];
    for d in &debugs {
        assert!(!d.contains(&secret), "{d}");
        assert!(!stored.is_empty() && !d.contains(&stored[10..30]), "hash leaked: {d}");
        assert!(d.contains("redacted"), "{d}");
    }
    assert!(debugs[0].contains("dave"), "the user name stays visible");
}

#[test]
fn a_certificate_maps_to_exactly_one_user() {
    let users = ["svc-a", "svc-b"];
    let lookup = |n: &str| users.contains(&n).then(|| UserDef::new(n, None, []).unwrap_or_else(|e| panic!("{e}")));
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let p = identify_certificate(&names(&["svc-a", "svc-a.example.com"]), lookup);
    assert_eq!(p.map(|p| p.user), Ok("svc-a".into()));
    let none = identify_certificate(&names(&["x.example.com"]), lookup).err();
    assert_eq!(none.as_ref().map(AuthError::code), Some("RKV-UNKNOWN-CERT-USER"));
    let two = identify_certificate(&names(&["svc-a", "svc-b"]), lookup).err();
    assert_eq!(two.as_ref().map(AuthError::code), Some("RKV-AMBIGUOUS-CERT-USER"));
    let many: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    let msg = identify_certificate(&many, lookup).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("and 96 more") && msg.len() < 400, "{msg}");
}

#[test]
fn verifying_a_token_is_cheap_enough_for_every_request() {
    // One salted SHA-256 per stored secret: microseconds even in a debug build.
    // The bound is loose on purpose (a shared CI machine); a slow KDF (tens of
    // milliseconds per check) would blow it by orders of magnitude.
    let token = issued("fast");
    let user = UserDef::new("fast", Some(token.hash()), []).unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    let rounds = 1000u32;
    let ok = (0..rounds).filter(|_| user.verify(&token.credentials)).count();
    let per_check = start.elapsed() / rounds;
    assert_eq!(ok, 1000);
    eprintln!("token verify: {per_check:?} per check (debug build)");
    assert!(per_check < std::time::Duration::from_millis(2), "{per_check:?} per check");
}
