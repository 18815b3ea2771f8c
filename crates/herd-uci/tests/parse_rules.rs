//! libuci's parsing rules, one test each (file.c and list.c behaviour).

use herd_uci::{export, parse, parse_str, Mode, Package, Value};

/// `input` parsed as package `t`; a parse error fails the test with it.
fn parsed(input: &str) -> Package {
    parse_str(input, "t").unwrap_or_else(|e| panic!("{e}\n{input}"))
}

fn check(input: &str, want_export: &str) {
    let p = parsed(input);
    assert_eq!(
        export(&p),
        format!("package t\n{want_export}\n"),
        "input:\n{input}"
    );
}

#[test]
fn one_letter_keywords_mean_the_long_ones() {
    check(
        "p t\nc zone 'z'\no name lan\nl network lan\n",
        "\nconfig zone 'z'\n\toption name 'lan'\n\tlist network 'lan'\n",
    );
}

#[test]
fn adjacent_quoted_and_bare_pieces_join_into_one_argument() {
    check(
        "config a\n\toption x ab'c d'\"e\\\"f\"g\n",
        "\nconfig a\n\toption x 'abc de\"fg'\n",
    );
}

#[test]
fn hash_ends_the_line_outside_quotes_even_inside_a_word() {
    check(
        "config a # comment\n\toption x ab#cd\n\toption y 'a#b'\n",
        "\nconfig a\n\toption x 'ab'\n\toption y 'a#b'\n",
    );
}

#[test]
fn single_quotes_are_literal_and_span_lines() {
    check(
        "config a\n\toption x 'a\\b\nc'\n",
        "\nconfig a\n\toption x 'a\\b\nc'\n",
    );
}

#[test]
fn backslash_newline_continues_the_line() {
    check(
        "config a\n\toption x abc\\\ndef\n\toption y \"x\\\ny\"\n",
        "\nconfig a\n\toption x 'abcdef'\n\toption y 'xy'\n",
    );
}

#[test]
fn crlf_line_ends_are_whitespace() {
    let lf = parsed("config zone 'lan'\n\toption name lan\n\tlist network 'a b'\n");
    let crlf = parsed("config zone 'lan'\r\n\toption name lan\r\n\tlist network 'a b'\r\n");
    assert_eq!(lf, crlf);
}

#[test]
fn empty_option_value_is_dropped_and_does_not_delete() {
    check(
        "config a\n\toption x 1\n\toption x ''\n\toption y ''\n",
        "\nconfig a\n\toption x '1'\n",
    );
}

#[test]
fn repeated_option_last_wins_and_moves_to_the_end() {
    check(
        "config a\n\toption x 1\n\toption y 2\n\toption x 3\n",
        "\nconfig a\n\toption y '2'\n\toption x '3'\n",
    );
}

#[test]
fn list_after_option_turns_it_into_a_list_and_option_after_list_replaces_it() {
    check(
        "config a\n\toption x 1\n\toption z 0\n\tlist x 2\n",
        "\nconfig a\n\toption z '0'\n\tlist x '1'\n\tlist x '2'\n",
    );
    check(
        "config a\n\tlist x 1\n\tlist x 2\n\toption x 3\n",
        "\nconfig a\n\toption x '3'\n",
    );
}

#[test]
fn empty_list_item_is_kept() {
    let p = parsed("config a\n\tlist x ''\n\tlist x\n");
    assert_eq!(
        p.sections[0].get("x"),
        Some(&Value::List(vec![String::new(), String::new()]))
    );
}

#[test]
fn same_named_sections_merge_in_place() {
    check(
        "config a 'n'\n\toption x 1\nconfig b 'm'\nconfig a 'n'\n\toption y 2\n",
        "\nconfig a 'n'\n\toption x '1'\n\toption y '2'\n\nconfig b 'm'\n",
    );
}

#[test]
fn merging_sections_of_different_types_is_an_error_only_in_strict_mode() {
    let input = b"config a 'n'\nconfig b 'n'\n";
    let e = parse(input, "t", "t", Mode::Strict).unwrap_err();
    assert_eq!(
        (e.line, e.reason.as_str()),
        (
            2,
            "section of different type overwrites prior section with same name"
        )
    );
    let p = parse(input, "t", "t", Mode::Lenient).unwrap().package;
    assert_eq!(p.sections[0].kind, "b");
}

#[test]
fn anonymous_ids_count_every_section_and_hash_the_type() {
    let p = parse_str(
        "config defaults\nconfig zone 'lan'\nconfig zone\n",
        "firewall",
    )
    .unwrap();
    let names: Vec<&str> = p.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cfg01e63d", "lan", "cfg03dc81"]);
}

#[test]
fn names_allow_only_letters_digits_and_underscore() {
    for bad in [
        "config a 'b-c'\n",
        "config a b\n\toption 'x.y' 1\n",
        "config 'a b'\n",
    ] {
        let e = parse(bad.as_bytes(), "t", "t", Mode::Strict).unwrap_err();
        assert!(e.reason.contains("invalid character"), "{bad:?}: {e}");
    }
    // Types may hold any printable character but blanks.
    check("config 'x-y.z@1'\n", "\nconfig x-y.z@1\n");
}

#[test]
fn strict_errors_carry_line_and_column() {
    let e = parse(
        b"config a\n\toption x 'unterminated\n",
        "t",
        "/etc/config/t",
        Mode::Strict,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "/etc/config/t:2:11: EOF with unterminated '");
    let e = parse(b"config a\n  bogus line\n", "t", "t", Mode::Strict).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.reason.as_str()),
        (2, 3, "invalid command")
    );
}

#[test]
fn lenient_mode_skips_bad_lines_and_reports_each() {
    let p = parse(
        b"config a\nbogus\n\toption x 1\noption\nconfig b 'c' extra\n",
        "t",
        "t",
        Mode::Lenient,
    )
    .unwrap();
    assert_eq!(p.skipped.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(p.package.sections.len(), 2);
    assert_eq!(p.package.sections[0].get_single("x"), Some("1"));
}

#[test]
fn option_before_any_section_is_an_error() {
    let e = parse(b"option x 1\n", "t", "t", Mode::Strict).unwrap_err();
    assert_eq!(
        e.reason,
        "option/list command found before the first section"
    );
}

#[test]
fn semicolon_separates_commands_on_one_line() {
    check(
        "config a 'b'; option x 1; option y 2\n",
        "\nconfig a 'b'\n\toption x '1'\n\toption y '2'\n",
    );
}

#[test]
fn a_type_with_a_character_the_parser_treats_specially_exports_quoted_and_reads_back() {
    // libuci writes types bare; `config '#'` would then read back as a
    // comment. Found by the `uci_like_text_never_panics` property.
    for (input, want) in [
        ("c \"#\"\n", "\nconfig '#'\n"),
        ("config 'a;b'\n", "\nconfig 'a;b'\n"),
        ("config \"a'b\"\n", "\nconfig 'a'\\''b'\n"),
        ("config zone\n", "\nconfig zone\n"),
    ] {
        check(input, want);
        let again = export(&parsed(input));
        assert_eq!(export(&parsed(&again)), again, "re-parse of:\n{again}");
    }
}
