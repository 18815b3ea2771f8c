//! OpenWrt UCI configuration: a parser and serializer with libuci's exact rules, a semantic diff and `uci batch` scripts. herd-uci knows nothing about firewalls.
