//! fw4 conformance: firewall4's own test cases (UCI as JSON in, the
//! nftables ruleset fw4 prints out), one test per case herd renders byte for
//! byte, the cases it does not listed with the reason, and a report over the
//! whole corpus.

mod support;

macro_rules! cases {
    ($($test:ident => $path:literal,)*) => {
        $(
            #[test]
            fn $test() {
                if let Err(diff) = support::check($path) {
                    panic!("{} differs from fw4:\n{diff}", $path);
                }
            }
        )*
        const IN_SCOPE: &[&str] = &[$($path),*];
    };
}

cases! {
    configuration_rule_order => "01_configuration/02_rule_order",
    zones_policies => "02_zones/01_policies",
    zones_masq => "02_zones/02_masq",
    zones_masq_src_dest_restrictions => "02_zones/03_masq_src_dest_restrictions",
    zones_masq_allow_invalid => "02_zones/04_masq_allow_invalid",
    zones_wildcard_devices => "02_zones/04_wildcard_devices",
    zones_subnet_mask_matches => "02_zones/05_subnet_mask_matches",
    zones_family_selections => "02_zones/06_family_selections",
    zones_log_limit => "02_zones/08_log_limit",
    rules_direction => "03_rules/01_direction",
    rules_enabled => "03_rules/02_enabled",
    rules_constraints => "03_rules/03_constraints",
    rules_icmp => "03_rules/04_icmp",
    rules_mangle => "03_rules/05_mangle",
    rules_subnet_mask_matches => "03_rules/06_subnet_mask_matches",
    rules_redirect => "03_rules/07_redirect",
    rules_family_inheritance => "03_rules/08_family_inheritance",
    rules_time => "03_rules/09_time",
    rules_notrack => "03_rules/10_notrack",
    rules_log => "03_rules/11_log",
    rules_mark => "03_rules/12_mark",
    forwardings_family_selections => "04_forwardings/01_family_selections",
    ipsets_declaration => "05_ipsets/01_declaration",
    ipsets_usage => "05_ipsets/02_usage",
    includes_nft_includes => "06_includes/01_nft_includes",
    includes_firewall_user_include => "06_includes/02_firewall.user_include",
    includes_disabled_include => "06_includes/04_disabled_include",
    includes_automatic_includes => "06_includes/05_automatic_includes",
}

/// The cases herd does not reproduce, and why.
const NOT_IDENTICAL: &[(&str, &str)] = &[
    (
        "01_configuration/01_ruleset",
        "renders firewall4's default mocked firewall config, which the corpus does not include",
    ),
    (
        "02_zones/07_helpers",
        "uses firewall4's default mocked CT helpers file (no uci/helpers.json), which the corpus does not include",
    ),
    (
        "06_includes/03_script_includes",
        "has no expected nftables output (script includes run at reload time)",
    ),
];

#[test]
fn every_case_is_identical_or_listed_with_its_reason() {
    let all = support::all_cases();
    for name in &all {
        let listed = NOT_IDENTICAL.iter().any(|(n, _)| n == name);
        assert!(
            IN_SCOPE.contains(&name.as_str()) != listed,
            "{name} must be in exactly one of cases! and NOT_IDENTICAL"
        );
        if listed {
            assert!(
                support::check(name).is_err(),
                "{name} is now identical: move it from NOT_IDENTICAL to cases!"
            );
        }
    }
    assert_eq!(all.len(), IN_SCOPE.len() + NOT_IDENTICAL.len());
}

#[test]
fn corpus_report() {
    let mut passed = 0;
    let all = support::all_cases();
    for name in &all {
        match support::check(name) {
            Ok(()) => {
                passed += 1;
                println!("pass  {name}");
            }
            Err(e) => println!(
                "FAIL  {name}: {}",
                e.lines().take(4).collect::<Vec<_>>().join(" | ")
            ),
        }
    }
    println!("fw4 corpus: {passed}/{} cases identical", all.len());
    for name in IN_SCOPE {
        assert!(support::check(name).is_ok(), "{name} must pass");
    }
}
