//! Router IP whitelisting: a whitelist policy rendered as OpenWrt UCI (network + firewall), fw4's nftables rendering and packet verdicts.
