package main

import (
	"strings"
	"testing"
)

const mitText = `MIT License

Copyright (c) 2024 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.`

const bsd2Text = `Copyright (c) 2013 The Authors. All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

   * Redistributions of source code must retain the above copyright
     notice, this list of conditions and the following disclaimer.
   * Redistributions in binary form must reproduce the above copyright
     notice, this list of conditions and the following disclaimer in the
     documentation and/or other materials provided with the distribution.`

const bsd3Text = bsd2Text + `
   * Neither the name of the copyright holder nor the names of its
     contributors may be used to endorse or promote products derived from
     this software without specific prior written permission.`

const gplText = `                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007
 Everyone is permitted to copy and distribute verbatim copies`

const lgplText = `GNU LESSER GENERAL PUBLIC LICENSE Version 3
This version of the GNU Lesser General Public License incorporates
the terms and conditions of version 3 of the GNU General Public License`

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"mit", mitText, "MIT"},
		{"bsd2", bsd2Text, "BSD-2-Clause"},
		{"bsd3", bsd3Text, "BSD-3-Clause"},
		{"gpl", gplText, "GPL"},
		{"lgpl", lgplText, "LGPL"},
		{"rewrapped", strings.ReplaceAll(mitText, "\n", "\n\n  "), "MIT"},
		{"unknown", "All rights reserved. You may not use this.", ""},
	} {
		if got := classify(tc.text); got != tc.want {
			t.Errorf("%s: classify = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestCheck: the checks that fail CI for a shipped module.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []licenceText
		want  string // substring of the one problem; "" for none
	}{
		{"mit", []licenceText{{Name: "LICENSE", Licence: classify(mitText)}}, ""},
		{"gpl", []licenceText{{Name: "COPYING", Licence: classify(gplText)}}, "GPL, which is not on the allow-list"},
		{"gpl extra file", []licenceText{{Name: "LICENSE", Licence: "MIT"}, {Name: "LICENSE-PART", Licence: "GPL"}}, "not on the allow-list"},
		{"unrecognised", []licenceText{{Name: "LICENSE.md", Licence: ""}}, "not a licence this check recognises"},
		{"none", []licenceText{{Name: "NOTICE", Licence: ""}}, "no LICENSE file"},
	} {
		problems := check(module{Path: "example.com/m", Version: "v1.0.0", Files: tc.files})
		switch {
		case tc.want == "" && len(problems) != 0:
			t.Errorf("%s: problems %q, want none", tc.name, problems)
		case tc.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.want)):
			t.Errorf("%s: problems %q, want one containing %q", tc.name, problems, tc.want)
		}
	}
}
