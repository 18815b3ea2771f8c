//! Properties over random configs: export round-trips through the parser,
//! and a generated batch script turns one config into the other.

use herd_uci::{batch_script, diff, export, parse_str, render_diff, run_script, Package, Value};
use proptest::prelude::*;

/// Values that exercise the quoting rules: quotes, backslashes, `#`, `;`,
/// blanks, newlines.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}",
        "[a-zA-Z0-9 '\"\\\\#;\t\n.=@-]{1,12}",
        Just("ACCEPT".to_string()),
        Just("1".to_string()),
        Just("lan wan".to_string()),
    ]
}

fn option_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("network".to_string()),
        Just("target".to_string()),
        Just("src".to_string()),
        Just("dest".to_string()),
        Just("masq".to_string()),
        "[a-z_]{1,8}",
    ]
}

#[derive(Debug, Clone)]
struct SectionSpec {
    kind: String,
    name: Option<String>,
    options: Vec<(String, Result<String, Vec<String>>)>,
}

fn section() -> impl Strategy<Value = SectionSpec> {
    (
        prop_oneof![
            Just("zone"),
            Just("rule"),
            Just("forwarding"),
            Just("defaults"),
            Just("x-y.z")
        ],
        proptest::option::weighted(0.3, "[a-z][a-z0-9_]{0,5}"),
        proptest::collection::vec(
            (
                option_name(),
                prop_oneof![
                    value().prop_map(Ok),
                    proptest::collection::vec(value(), 1..4).prop_map(Err)
                ],
            ),
            0..6,
        ),
    )
        .prop_map(|(kind, name, options)| SectionSpec {
            kind: kind.to_string(),
            name,
            options,
        })
}

fn build(specs: &[SectionSpec]) -> Package {
    let mut p = Package::new("firewall");
    for spec in specs {
        let exists = spec.name.as_ref().is_some_and(|n| p.section(n).is_some());
        if exists {
            continue;
        }
        let s = match &spec.name {
            Some(n) => p.add_named(spec.kind.clone(), n.clone()),
            None => p.add_anonymous(spec.kind.clone()),
        };
        for (name, v) in &spec.options {
            if s.option(name).is_some() {
                continue;
            }
            match v {
                Ok(single) => s.set(name.clone(), single.clone()),
                Err(items) => s.set_list(name.clone(), items.clone()),
            };
        }
    }
    p
}

fn package() -> impl Strategy<Value = Package> {
    proptest::collection::vec(section(), 0..8).prop_map(|specs| build(&specs))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn export_then_parse_gives_back_the_same_config(p in package()) {
        let text = export(&p);
        let back = parse_str(&text, "firewall").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, p);
    }

    #[test]
    fn batch_script_turns_old_into_new(old in package(), new in package()) {
        let script = batch_script(&old, &new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut applied = old.clone();
        run_script(&mut applied, &script).map_err(|e| TestCaseError::fail(format!("{e}\n{script}")))?;
        let rest = diff(&applied, &new);
        prop_assert!(rest.is_empty(), "script:\n{}\nleft over:\n{}", script, render_diff(&rest));
    }

    #[test]
    fn diff_of_a_config_with_itself_is_empty(p in package()) {
        prop_assert!(diff(&p, &p).is_empty());
    }
}

#[test]
fn single_value_and_list_of_its_words_are_equal_for_list_options() {
    let a = parse_str(
        "config zone\n\toption name lan\n\toption network 'lan wan'\n",
        "firewall",
    )
    .unwrap();
    let b = parse_str(
        "config zone\n\toption name lan\n\tlist network lan\n\tlist network wan\n",
        "firewall",
    )
    .unwrap();
    assert!(diff(&a, &b).is_empty());
    // Not for an option that is not list-typed.
    let c = parse_str("config zone\n\toption name 'lan wan'\n", "firewall").unwrap();
    let d = parse_str(
        "config zone\n\tlist name lan\n\tlist name wan\n",
        "firewall",
    )
    .unwrap();
    assert!(!diff(&c, &d).is_empty());
    let _ = Value::Single(String::new());
}

#[test]
fn batch_script_swaps_section_names() {
    let old = parse_str(
        "config zone 'a'\n\toption name lan\nconfig zone 'b'\n\toption name wan\n",
        "firewall",
    )
    .unwrap();
    let new = parse_str(
        "config zone 'b'\n\toption name lan\nconfig zone 'a'\n\toption name wan\n",
        "firewall",
    )
    .unwrap();
    let script = batch_script(&old, &new).unwrap();
    let mut applied = old.clone();
    run_script(&mut applied, &script).unwrap();
    assert!(diff(&applied, &new).is_empty(), "{script}");
    assert_eq!(script.lines().count(), 3, "{script}");
}
