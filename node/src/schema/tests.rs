use proptest::prelude::*;

use super::*;
use crate::auth::{Grant, IssuedToken, Role, Scope};
use crate::config::Config;
use crate::storage::{MemoryStorage, Storage as _};
use crate::version::ConflictMode;

fn stamp(micros: u64, host: &str) -> Stamp {
    Stamp { micros, host: host.into() }
}

fn def(name: &str, rf: u32) -> KeyspaceDef {
    KeyspaceDef { replication_factor: Some(rf), ..KeyspaceDef::named(name) }
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    let name = prop::sample::select(vec!["a", "b", "c"]);
    let host = prop::sample::select(vec!["h1", "h2"]);
    (name, 0u64..4, host, prop::option::of((1u32..4, any::<bool>())), any::<bool>()).prop_map(
        |(name, micros, host, body, user)| {
            let body = match body {
                None => Body::Tombstone,
                Some((_, _)) if user => {
                    Body::User(crate::auth::UserDef::new(name, None, []).unwrap_or_else(|e| panic!("{e}")))
                }
                Some((rf, lww)) => Body::Keyspace(KeyspaceDef {
                    conflict_mode: if lww { ConflictMode::Lww } else { ConflictMode::Siblings },
                    ..def(name, rf)
                }),
            };
            let key = if user { EntryKey::user(name) } else { EntryKey::keyspace(name) };
            Entry { key, stamp: stamp(micros, host), body }
        },
    )
}

fn arb_schema() -> impl Strategy<Value = Schema> {
    prop::collection::vec(arb_entry(), 0..8).prop_map(|entries| {
        let mut s = Schema::new();
        for e in entries {
            s.merge_entry(e);
        }
        s
    })
}

fn merged(a: &Schema, b: &Schema) -> Schema {
    let mut out = a.clone();
    out.merge(b);
    out
}

proptest! {
    #[test]
    fn merge_is_commutative_associative_and_idempotent(a in arb_schema(), b in arb_schema(), c in arb_schema()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        prop_assert_eq!(merged(&a, &b).digest(), merged(&b, &a).digest());
    }

    #[test]
    fn any_arrival_order_gives_the_same_schema(entries in prop::collection::vec(arb_entry(), 0..10)) {
        let mut forward = Schema::new();
        let mut backward = Schema::new();
        for e in &entries { forward.merge_entry(e.clone()); }
        for e in entries.iter().rev() { backward.merge_entry(e.clone()); }
        prop_assert_eq!(&forward, &backward);
        prop_assert_eq!(forward.digest(), backward.digest());
    }

    #[test]
    fn the_summary_exchange_converges_two_nodes(a in arb_schema(), b in arb_schema()) {
        let (mut x, mut y) = (a.clone(), b.clone());
        // x sends its summary; y answers with what x lacks and what it wants back.
        let for_x = y.newer_than(&x.summary());
        let wanted = y.wanted_from(&x.summary());
        let for_y = x.entries_for(&wanted);
        let (_, refused_x) = x.merge_remote(for_x);
        let (_, refused_y) = y.merge_remote(for_y);
        prop_assert!(refused_x.is_empty() && refused_y.is_empty());
        prop_assert_eq!(x.digest(), y.digest());
        prop_assert_eq!(&x, &merged(&a, &b));
    }
}

#[test]
fn concurrent_conflicting_alters_resolve_the_same_way_everywhere() {
    let mut base = Schema::new();
    base.seed_from_config(&Config::default());
    let created = base.create_keyspace(def("carts", 3), stamp(100, "h0")).unwrap_or_else(|e| panic!("{e}"));
    base.merge_entry(created);
    let alter = |rf, host| base.alter_keyspace(def("carts", rf), stamp(200, host)).unwrap_or_else(|e| panic!("{e}"));
    let (one, two) = (alter(2, "h1"), alter(5, "h2"));
    let (mut n1, mut n2) = (base.clone(), base.clone());
    n1.merge_entry(one.clone());
    n1.merge_entry(two.clone());
    n2.merge_entry(two);
    n2.merge_entry(one);
    assert_eq!(n1, n2);
    assert_eq!(n1.keyspace("carts").and_then(|d| d.replication_factor), Some(5), "h2 > h1 at the same micros");
}

#[test]
fn a_change_made_after_seeing_another_wins_even_with_a_lagging_clock() {
    let mut s = Schema::new();
    s.merge_entry(Entry {
        key: EntryKey::keyspace("k"),
        stamp: stamp(5_000, "fast"),
        body: Body::Keyspace(def("k", 1)),
    });
    let later = Stamp::next(10, "slow", &s);
    assert!(later > stamp(5_000, "fast"), "{later:?}");
    assert_eq!(Stamp::next(9_000, "x", &s).micros, 9_000, "the wall clock when it is ahead");
}

#[test]
fn a_drop_is_not_undone_by_a_node_that_missed_it() {
    let mut up = Schema::new();
    up.seed_from_config(&Config::default());
    up.merge_entry(up.create_keyspace(def("old", 1), stamp(10, "h1")).unwrap_or_else(|e| panic!("{e}")));
    let was_down = up.clone();
    up.merge_entry(up.drop_keyspace("old", stamp(20, "h1")).unwrap_or_else(|e| panic!("{e}")));
    let mut returning = was_down.clone();
    returning.merge(&up);
    let mut peer = up.clone();
    peer.merge(&was_down);
    assert!(returning.keyspace("old").is_none() && peer.keyspace("old").is_none());
    let r = &Config::default().replication;
    assert!(matches!(lookup_keyspace(&peer, "old", r), Err(SchemaError::KeyspaceDropped { .. })));
    let again = peer.create_keyspace(def("old", 2), Stamp::next(0, "h2", &peer)).unwrap_or_else(|e| panic!("{e}"));
    peer.merge_entry(again);
    assert_eq!(peer.keyspace("old").and_then(|d| d.replication_factor), Some(2), "re-created");
}

#[test]
fn default_always_exists_and_cannot_be_dropped() {
    let mut config = Config::default();
    config.replication.default_keyspace_conflict_mode = ConflictMode::Lww;
    let mut s = Schema::new();
    let r = &config.replication;
    assert_eq!(keyspaces_of(&s, r).iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["default"]);
    assert_eq!(lookup_keyspace(&s, "", r).map(|k| k.conflict_mode), Ok(ConflictMode::Lww));
    s.seed_from_config(&config);
    assert_eq!(s.drop_keyspace("default", stamp(1, "h")), Err(SchemaError::DefaultKeyspace));
    let forged = Entry { key: EntryKey::keyspace("default"), stamp: stamp(9, "evil"), body: Body::Tombstone };
    let (changed, refused) = s.merge_remote(vec![forged]);
    assert!(!changed && refused.len() == 1, "{refused:?}");
    assert!(s.keyspace("default").is_some());
}

#[test]
fn an_unknown_keyspace_is_not_yet_learned_and_retryable() {
    let s = Schema::new();
    let err = lookup_keyspace(&s, "later", &Config::default().replication).err();
    assert!(err.as_ref().is_some_and(SchemaError::is_retryable), "{err:?}");
    assert!(
        err.is_some_and(|e| e.to_string().starts_with("RKV-KEYSPACE-NOT-LEARNED") && e.to_string().contains("retry"))
    );
}

#[test]
fn config_keyspaces_seed_only_absent_names_and_resolve_cluster_defaults() {
    let mut config: Config =
        toml::from_str("[[keyspaces]]\nname = \"carts\"\nconflict_mode = \"lww\"\n").unwrap_or_else(|e| panic!("{e}"));
    config.replication.replication_factor = 2;
    let mut s = Schema::new();
    s.seed_from_config(&config);
    assert_eq!(s.entry(&EntryKey::keyspace("carts")).map(|e| &e.stamp), Some(&Stamp::ZERO));
    s.merge_entry(s.alter_keyspace(def("carts", 3), stamp(1, "h")).unwrap_or_else(|e| panic!("{e}")));
    s.merge_entry(s.drop_keyspace("carts", stamp(2, "h")).unwrap_or_else(|e| panic!("{e}")));
    s.seed_from_config(&config);
    assert!(s.keyspace("carts").is_none(), "a restart with the same config does not bring a dropped keyspace back");
    let mut fresh = Schema::new();
    fresh.seed_from_config(&config);
    let ks = keyspaces_of(&fresh, &config.replication);
    let carts = ks.iter().find(|k| k.name == "carts").unwrap_or_else(|| panic!("{ks:?}"));
    assert_eq!((carts.replication_factor, carts.conflict_mode), (2, ConflictMode::Lww));
    let old = crate::replication::Keyspaces::from_config(&config);
    assert_eq!(old.list().iter().map(|k| (**k).clone()).collect::<Vec<_>>(), ks, "same as the config registry");
}

#[test]
fn keyspace_validation_names_the_field() {
    let with = |f: fn(&mut KeyspaceDef)| {
        let mut d = def("k", 3);
        f(&mut d);
        match d.validate() {
            Err(SchemaError::InvalidKeyspace { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(with(|d| d.name = "bad name".into()), "name");
    assert_eq!(with(|d| d.replication_factor = Some(0)), "replication_factor");
    assert_eq!(with(|d| d.replication_factor = Some(33)), "replication_factor");
    assert_eq!(with(|d| d.zone_replication = [("z1".into(), 1), ("z2".into(), 1)].into()), "zone_replication");
    assert_eq!(with(|d| d.zone_replication = [("z1".into(), 0), ("z2".into(), 3)].into()), "zone_replication");
    assert_eq!(
        with(|d| {
            d.replication_factor = None;
            d.zone_replication = [("z1".into(), 1)].into();
        }),
        "replication_factor"
    );
    assert_eq!(with(|d| d.read_consistency = Some(crate::replication::ConsistencyLevel::Any)), "read_consistency");
    assert_eq!(
        with(|d| {
            d.replication_factor = Some(2);
            d.write_consistency = Some(crate::replication::ConsistencyLevel::Three);
        }),
        "write_consistency"
    );
    assert_eq!(with(|d| d.default_ttl_seconds = Some(0)), "default_ttl_seconds");
    let mut ok = def("k", 3);
    ok.zone_replication = [("z1".into(), 2), ("z2".into(), 1)].into();
    assert_eq!(ok.validate(), Ok(()));
    let msg = with(|d| d.replication_factor = Some(0));
    assert!(!msg.is_empty());
    let err = def("k", 0).validate().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("RKV-INVALID-KEYSPACE") && err.contains("use 1..=32"), "{err}");
}

#[test]
fn user_changes_check_names_and_keyspaces() {
    let mut s = Schema::new();
    s.seed_from_config(&Config::default());
    let read_a = Grant { scope: Scope::Keyspace("a".into()), role: Role::Read };
    let (entry, token) = ops::new_user_with_token(&s, "app", vec![], stamp(1, "h")).unwrap_or_else(|e| panic!("{e}"));
    s.merge_entry(entry);
    assert!(matches!(
        ops::new_user_with_token(&s, "app", vec![], stamp(2, "h")),
        Err(ops::UserCreateError::Schema(SchemaError::UserExists { .. }))
    ));
    assert!(matches!(s.grant("app", read_a.clone(), stamp(2, "h")), Err(SchemaError::GrantOnUnknownKeyspace { .. })));
    s.merge_entry(s.create_keyspace(def("a", 1), stamp(3, "h")).unwrap_or_else(|e| panic!("{e}")));
    s.merge_entry(s.grant("app", read_a.clone(), stamp(4, "h")).unwrap_or_else(|e| panic!("{e}")));
    let user = s.user("app").cloned().unwrap_or_else(|| panic!("no user"));
    assert!(user.verify(&token.credentials) && user.grants.contains(&read_a));
    let next = IssuedToken::generate("app").unwrap_or_else(|e| panic!("{e}"));
    s.merge_entry(s.rotate_secret("app", next.hash(), stamp(5, "h")).unwrap_or_else(|e| panic!("{e}")));
    s.merge_entry(s.retire_secrets("app", stamp(6, "h")).unwrap_or_else(|e| panic!("{e}")));
    let user = s.user("app").cloned().unwrap_or_else(|| panic!("no user"));
    assert!(!user.verify(&token.credentials) && user.verify(&next.credentials));
    s.merge_entry(s.revoke("app", &Scope::Keyspace("a".into()), stamp(7, "h")).unwrap_or_else(|e| panic!("{e}")));
    assert!(s.user("app").is_some_and(|u| u.grants.is_empty()));
    s.merge_entry(s.drop_user("app", stamp(8, "h")).unwrap_or_else(|e| panic!("{e}")));
    let gone = crate::auth::authenticate(&next.credentials, |n| s.user(n).cloned()).err();
    assert_eq!(gone.map(|e| e.code()), Some("RKV-INVALID-CREDENTIALS"), "a dropped user's token stops working");
    assert!(matches!(s.grant("app", read_a, stamp(9, "h")), Err(SchemaError::UnknownUser { .. })));
}

#[test]
fn the_schema_survives_a_restart_and_a_corrupt_save_is_an_error() {
    let storage = MemoryStorage::new();
    let config = Config::default();
    let mut s = store::open(&storage, &config).unwrap_or_else(|e| panic!("{e}"));
    assert!(storage.get_meta(store::SCHEMA_KEY).ok().flatten().is_some(), "saved at first start");
    s.merge_entry(s.create_keyspace(def("kept", 2), stamp(1, "h")).unwrap_or_else(|e| panic!("{e}")));
    let token = IssuedToken::generate("admin").unwrap_or_else(|e| panic!("{e}"));
    let admin = s.bootstrap_admin(&token.credentials, stamp(2, "h")).unwrap_or_else(|e| panic!("{e}"));
    s.merge_entry(admin.unwrap_or_else(|| panic!("first bootstrap creates the admin")));
    assert_eq!(s.bootstrap_admin(&token.credentials, stamp(3, "h")).ok(), Some(None), "only once");
    store::save(&storage, &s).unwrap_or_else(|e| panic!("{e}"));
    let reopened = store::open(&storage, &config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reopened, s);
    assert!(reopened.user("admin").is_some_and(|u| u.verify(&token.credentials)));

    for garbage in [&b"{not json"[..], br#"{"format":9,"entries":[]}"#, br#"{"format":1,"entries":[{"key":{"kind":"keyspace","name":"x"},"stamp":{"micros":1,"host":"h"},"body":{"keyspace":{"name":"y","replication_factor":1,"conflict_mode":"lww","read_consistency":null,"write_consistency":null,"default_ttl_seconds":null}}}]}"#] {
        storage.put_meta(store::SCHEMA_KEY, garbage).unwrap_or_else(|e| panic!("{e}"));
        let err = store::open(&storage, &config).err();
        assert!(matches!(err, Some(SchemaError::Corrupt { .. })), "{err:?}");
        assert!(err.is_some_and(|e| e.to_string().contains("restore the data directory")));
    }
}

#[test]
fn the_bootstrap_token_comes_from_the_file_first_then_the_env() {
    let token = IssuedToken::generate("root").unwrap_or_else(|e| panic!("{e}")).expose();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("admin-token");
    std::fs::write(&path, format!("{token}\n")).unwrap_or_else(|e| panic!("{e}"));
    let mut auth = crate::config::AuthConfig { admin_token_file: Some(path.clone()), ..Default::default() };
    let from_file = store::bootstrap_credentials(&auth, Some("other.x")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_file.map(|c| c.user), Some("root".into()));
    auth.admin_token_file = Some(dir.path().join("missing"));
    let err = store::bootstrap_credentials(&auth, None).err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("RKV-ADMIN-TOKEN"));
    auth.admin_token_file = None;
    assert_eq!(store::bootstrap_credentials(&auth, Some(&token)).ok().flatten().map(|c| c.user), Some("root".into()));
    assert_eq!(store::bootstrap_credentials(&auth, None).ok(), Some(None));
    let bad = store::bootstrap_credentials(&auth, Some("root.short")).err();
    assert!(bad.is_some_and(|e| e.code() == "RKV-BAD-TOKEN" && !e.to_string().contains("short")));
}
