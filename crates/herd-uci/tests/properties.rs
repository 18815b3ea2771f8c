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
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

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

/// `text` parsed as package `firewall`; a parse error fails the test.
fn firewall(text: &str) -> Package {
    parse_str(text, "firewall").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn single_value_and_list_of_its_words_are_equal_for_list_options() {
    let a = firewall("config zone\n\toption name lan\n\toption network 'lan wan'\n");
    let b = firewall("config zone\n\toption name lan\n\tlist network lan\n\tlist network wan\n");
    assert!(diff(&a, &b).is_empty());
    // Not for an option that is not list-typed.
    let c = firewall("config zone\n\toption name 'lan wan'\n");
    let d = firewall("config zone\n\tlist name lan\n\tlist name wan\n");
    assert!(!diff(&c, &d).is_empty());
    let _ = Value::Single(String::new());
}

#[test]
fn batch_script_swaps_section_names() {
    let old = firewall("config zone 'a'\n\toption name lan\nconfig zone 'b'\n\toption name wan\n");
    let new = firewall("config zone 'b'\n\toption name lan\nconfig zone 'a'\n\toption name wan\n");
    let script = batch_script(&old, &new).unwrap();
    let mut applied = old.clone();
    run_script(&mut applied, &script).unwrap();
    assert!(diff(&applied, &new).is_empty(), "{script}");
    assert_eq!(script.lines().count(), 3, "{script}");
}

// ---- the format-preserving editor ------------------------------------------

/// Who a line of a hand-written file belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Other,
    Header(usize),
    Option(usize, String),
}

fn written(v: &str, style: u8) -> String {
    let bare = !v.is_empty()
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_./:-".contains(&c));
    match style % 3 {
        0 if bare => v.to_string(),
        1 => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        _ => herd_uci::quote(v),
    }
}

/// Render a package the way people write files: comments, blank lines,
/// tabs or spaces, bare words, double or single quotes. Returns the text as
/// (line, owner) pairs.
fn hand_written(p: &Package, styles: &[u8]) -> Vec<(String, Owner)> {
    let mut style = styles.iter().copied().cycle();
    let mut out: Vec<(String, Owner)> = vec![("# written by hand".into(), Owner::Other)];
    for (i, s) in p.sections.iter().enumerate() {
        out.push((String::new(), Owner::Other));
        if style.next().unwrap_or(0) % 2 == 0 {
            out.push((format!("# section {i}"), Owner::Other));
        }
        let head = if s.anonymous {
            format!("config {}", s.kind)
        } else {
            format!(
                "config {} {}",
                s.kind,
                written(&s.name, style.next().unwrap_or(0))
            )
        };
        out.push((head, Owner::Header(i)));
        for o in &s.options {
            let indent = if style.next().unwrap_or(0) % 2 == 0 {
                "\t"
            } else {
                "    "
            };
            let lines: Vec<String> = match &o.value {
                Value::Single(v) => vec![format!(
                    "{indent}option {}\t{}",
                    o.name,
                    written(v, style.next().unwrap_or(0))
                )],
                Value::List(items) => items
                    .iter()
                    .map(|v| {
                        format!(
                            "{indent}list {} {}",
                            o.name,
                            written(v, style.next().unwrap_or(0))
                        )
                    })
                    .collect(),
            };
            for l in lines {
                // A statement may span lines (newlines inside quotes).
                for part in l.split('\n') {
                    out.push((part.to_string(), Owner::Option(i, o.name.clone())));
                }
            }
        }
    }
    out
}

/// How a script names section `i`: `@type[i]`, or its name when the type
/// cannot appear in a reference.
fn sref(p: &Package, i: usize) -> String {
    if p.sections[i].kind.contains('.') {
        p.sections[i].name.clone()
    } else {
        p.show_ref(i)
    }
}

fn is_subsequence(small: &[&str], big: &[&str]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

#[derive(Debug, Clone)]
enum Edit {
    SetExisting(usize, usize, String),
    SetNew(usize, String),
    DeleteOption(usize, usize),
    DeleteSection(usize),
    AddSection(String),
}

fn an_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), "[a-z0-9 ]{1,8}")
            .prop_map(|(s, o, v)| Edit::SetExisting(s, o, v)),
        (any::<usize>(), "[a-z0-9]{1,8}").prop_map(|(s, v)| Edit::SetNew(s, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(s, o)| Edit::DeleteOption(s, o)),
        any::<usize>().prop_map(Edit::DeleteSection),
        "[a-z0-9]{1,8}".prop_map(Edit::AddSection),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn format_preserving_editor_changes_only_the_lines_it_must(
        p in package(),
        styles in proptest::collection::vec(any::<u8>(), 1..32),
        change in an_edit(),
    ) {
        let lines = hand_written(&p, &styles);
        let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
        let parsed = parse_str(&text, "firewall").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(diff(&parsed, &p).is_empty(), "hand-written text does not mean the config:\n{}", text);
        let n = p.sections.len();
        // The script, which lines it may touch, and how many it may add.
        let (script, touched, added): (String, Vec<Owner>, usize) = match change {
            Edit::SetExisting(s, o, v) if n > 0 && !p.sections[s % n].options.is_empty() => {
                let s = s % n;
                let opt = &p.sections[s].options[o % p.sections[s].options.len()];
                (format!("set firewall.{}.{}='{v}'\n", sref(&p, s), opt.name), vec![Owner::Option(s, opt.name.clone())], 1)
            }
            Edit::SetNew(s, v) if n > 0 && p.sections[s % n].option("zzz").is_none() => {
                let s = s % n;
                (format!("set firewall.{}.zzz='{v}'\n", sref(&p, s)), vec![], 1)
            }
            Edit::DeleteOption(s, o) if n > 0 && !p.sections[s % n].options.is_empty() => {
                let s = s % n;
                let opt = &p.sections[s].options[o % p.sections[s].options.len()];
                (format!("delete firewall.{}.{}\n", sref(&p, s), opt.name), vec![Owner::Option(s, opt.name.clone())], 0)
            }
            Edit::DeleteSection(s) if n > 0 => {
                let s = s % n;
                let mut t = vec![Owner::Header(s)];
                t.extend(p.sections[s].options.iter().map(|o| Owner::Option(s, o.name.clone())));
                (format!("delete firewall.{}\n", sref(&p, s)), t, 0)
            }
            Edit::AddSection(v) => (format!("add firewall redirect\nset firewall.@redirect[-1].name='{v}'\n"), vec![], 3),
            _ => return Ok(()),
        };
        let e = herd_uci::edit_with_script(&text, "firewall", &script)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{script}")))?;
        prop_assert!(!e.rewritten, "fell back to a rewrite for {}", script);
        // It means what the script says...
        let mut want = parsed.clone();
        run_script(&mut want, &script).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = parse_str(&e.text, "firewall").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(diff(&got, &want).is_empty(), "{}\n---\n{}", script, e.text);
        // ...and every line it was not asked to touch is still there, in order.
        let kept: Vec<&str> = lines.iter().filter(|(_, o)| !touched.contains(o)).map(|(l, _)| l.as_str()).collect();
        let out: Vec<&str> = e.text.lines().collect();
        prop_assert!(is_subsequence(&kept, &out), "{}\n---\n{}\n---\n{}", script, text, e.text);
        prop_assert!(out.len() <= kept.len() + added + 1, "{} lines added for {}:\n{}", out.len() - kept.len(), script, e.text);
    }
}
