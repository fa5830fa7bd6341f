package main

import "strings"

// allowed are the licences a shipped dependency may have: permissive ones,
// and MPL-2.0, whose copyleft is per file and so asks nothing of a binary
// beyond pointing at the source of the MPL files themselves.
var allowed = map[string]bool{
	"Apache-2.0":    true,
	"MIT":           true,
	"BSD-2-Clause":  true,
	"BSD-3-Clause":  true,
	"ISC":           true,
	"MPL-2.0":       true,
	"Public-Domain": true, // SQLite's dedication, vendored by modernc.org/sqlite
	"Patent grant":  true, // Go's PATENTS file: an extra grant, not a restriction
}

// signatures recognise a licence by phrases only its text has, all of which
// must appear. Order matters: the first match wins, so LGPL and AGPL come before GPL (whose name their texts quote), the BSD-3 entry (with
// its "neither the name" clause) comes before BSD-2, and the copyleft
// licences, which must never be taken for a permissive one, come first.
var signatures = []struct {
	licence string
	phrases []string
}{
	{"LGPL", []string{"gnu lesser general public license"}},
	{"AGPL", []string{"gnu affero general public license"}},
	{"GPL", []string{"gnu general public license"}},
	{"SSPL", []string{"server side public license"}},
	{"BUSL", []string{"business source license"}},
	{"MPL-2.0", []string{"mozilla public license", "version 2.0"}},
	{"Apache-2.0", []string{"apache license", "version 2.0", "terms and conditions for use, reproduction, and distribution"}},
	{"MIT", []string{"permission is hereby granted, free of charge, to any person obtaining a copy", "the above copyright notice and this permission notice shall be included"}},
	{"ISC", []string{"permission to use, copy, modify, and/or distribute this software for any purpose with or without fee is hereby granted"}},
	{"ISC", []string{"permission to use, copy, modify, and distribute this software for any purpose with or without fee is hereby granted"}},
	{"BSD-3-Clause", []string{"redistribution and use in source and binary forms", "neither the name"}},
	{"BSD-3-Clause", []string{"redistribution and use in source and binary forms", "the names of its contributors may not be used"}},
	{"BSD-2-Clause", []string{"redistribution and use in source and binary forms", "redistributions in binary form must reproduce"}},
	{"Public-Domain", []string{"dedicated to the public domain"}},
	{"Patent grant", []string{"additional ip rights grant (patents)"}},
}

// classify names the licence of a text, or returns "" if no signature
// matches (a notice, or a licence nobody has looked at yet).
func classify(text string) string {
	t := strings.ToLower(strings.Join(strings.Fields(text), " "))
	// Markdown and plain-text wrappings quote the same words differently.
	t = strings.NewReplacer("“", `"`, "”", `"`, "’", "'").Replace(t)
	for _, s := range signatures {
		all := true
		for _, p := range s.phrases {
			if !strings.Contains(t, p) {
				all = false
				break
			}
		}
		if all {
			return s.licence
		}
	}
	return ""
}
