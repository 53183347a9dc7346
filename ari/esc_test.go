package ari

import "net/url"

func esc(s string) string { return url.QueryEscape(s) }
