// Command licenses lists the licences of every module linked into the
// binaries ivschatd ships (cmd/ivschatd and cmd/ivschat-bench, for every
// release OS), fails if one is not on the allow-list, and writes or checks
// THIRD_PARTY_LICENSES.md, which reproduces their licence and NOTICE texts
// as the Apache, MIT and BSD licences require of a binary distribution.
//
//	go run ./scripts/licenses          check: exit 1 on a disallowed or unknown
//	                                   licence, or a stale report
//	go run ./scripts/licenses -write   regenerate THIRD_PARTY_LICENSES.md
//
// The web console's production npm packages (console/package-lock.json) are
// bundled into the embedded console and listed as npm:<name>; they are read
// from console/node_modules, so run `npm ci` in console/ first.
//
// Test-only modules are not shipped and not listed. Licences are classified
// by matching their text against a few distinctive phrases (classify.go),
// which is enough for the handful of permissive licences in use and needs no
// dependency; a licence the phrases do not recognise fails the check, so a
// person looks at it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// shipped are the packages whose binaries are released.
var shipped = []string{"./cmd/ivschatd", "./cmd/ivschat-bench"}

// releaseOSes are the GOOS values of the release targets: the dependency set
// differs by OS (golang.org/x/sys/windows, for one).
var releaseOSes = []string{"linux", "darwin", "windows"}

const reportPath = "THIRD_PARTY_LICENSES.md"

// licenceFile matches the files in a module's root that carry licence or
// notice text; primary ones (LICENSE, COPYING, …) state the module's own
// licence, the others (LICENSE-SQLITE, NOTICE, PATENTS, …) add to it.
var (
	licenceFile      = regexp.MustCompile(`(?i)^(licen[cs]e|copying|unlicense|notice|patents)([-._].*)?$`)
	primaryFile      = regexp.MustCompile(`(?i)^(licen[cs]e|copying|unlicense)(\.(txt|md))?$`)
	thirdPartyReport = regexp.MustCompile(`(?i)(3rd|third)[-_]?party`)
)

type module struct {
	Path, Version, Dir string
	Files              []licenceText
}

type licenceText struct {
	Name    string // file name in the module root
	Licence string // classification; "" for a notice that is not a licence
	Text    string
}

func main() {
	write := flag.Bool("write", false, "regenerate "+reportPath+" instead of checking it")
	flag.Parse()
	if err := run(*write, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "licenses:", err)
		os.Exit(1)
	}
}

func run(write bool, out io.Writer) error {
	mods, err := shippedModules()
	if err != nil {
		return err
	}
	npm, err := consolePackages()
	if err != nil {
		return err
	}
	mods = append(mods, npm...)
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	std, err := os.ReadFile(filepath.Join(goroot, "LICENSE"))
	if err != nil {
		return fmt.Errorf("the Go distribution's licence: %w", err)
	}
	mods = append([]module{{Path: "Go standard library and runtime", Version: "(toolchain)", Files: []licenceText{{Name: "LICENSE", Licence: classify(string(std)), Text: string(std)}}}}, mods...)

	var problems []string
	for i := range mods {
		if err := readLicences(&mods[i]); err != nil {
			return err
		}
		problems = append(problems, check(mods[i])...)
	}
	report := render(mods)
	if write {
		if err := os.WriteFile(reportPath, report, 0o644); err != nil {
			return err
		}
	} else if old, err := os.ReadFile(reportPath); err != nil || !bytes.Equal(old, report) {
		problems = append(problems, reportPath+" is missing or out of date: run `go run ./scripts/licenses -write` and commit it")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(out, "licenses: %d shipped modules, all on the allow-list\n", len(mods))
	return nil
}

// shippedModules is the union over the release OSes of the modules whose
// packages the shipped binaries import.
func shippedModules() ([]module, error) {
	seen := map[string]module{}
	for _, goos := range releaseOSes {
		args := append([]string{"list", "-deps", "-json=Module"}, shipped...)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		cmd.Stderr = os.Stderr
		raw, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list for %s: %w", goos, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		for {
			var p struct {
				Module *struct {
					Path, Version, Dir string
					Main               bool
				}
			}
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				return nil, err
			}
			if p.Module == nil || p.Module.Main {
				continue // standard library, or ivschatd itself
			}
			if p.Module.Dir == "" {
				return nil, fmt.Errorf("module %s@%s is not downloaded: run go mod download", p.Module.Path, p.Module.Version)
			}
			seen[p.Module.Path] = module{Path: p.Module.Path, Version: p.Module.Version, Dir: p.Module.Dir}
		}
	}
	mods := make([]module, 0, len(seen))
	for _, m := range seen {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

func readLicences(m *module) error {
	if m.Dir == "" {
		return nil // already filled in (the Go distribution)
	}
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !licenceFile.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Dir, e.Name()))
		if err != nil {
			return err
		}
		lt := licenceText{Name: e.Name(), Text: string(b)}
		// A module's own third-party report (modernc.org/libc and sqlite
		// keep one) quotes many licences, some of components that are not
		// linked; it is reproduced as a notice, not classified as one licence.
		if !thirdPartyReport.MatchString(e.Name()) {
			lt.Licence = classify(lt.Text)
		}
		m.Files = append(m.Files, lt)
	}
	return nil
}

// check returns what is wrong with a module's licences: none found, a
// primary licence file that is not recognised, or a licence off the list.
func check(m module) []string {
	var problems []string
	primaries := 0
	for _, f := range m.Files {
		if primaryFile.MatchString(f.Name) {
			primaries++
			if f.Licence == "" {
				problems = append(problems, fmt.Sprintf("%s@%s: %s is not a licence this check recognises; classify it by hand (scripts/licenses/classify.go)", m.Path, m.Version, f.Name))
				continue
			}
		}
		if f.Licence != "" && !allowed[f.Licence] {
			problems = append(problems, fmt.Sprintf("%s@%s: %s is %s, which is not on the allow-list", m.Path, m.Version, f.Name, f.Licence))
		}
	}
	if primaries == 0 {
		problems = append(problems, fmt.Sprintf("%s@%s: no LICENSE file in the module", m.Path, m.Version))
	}
	return problems
}

// licences is the module's licence names for the summary table.
func (m module) licences() string {
	var names []string
	for _, f := range m.Files {
		if f.Licence != "" && f.Licence != "Patent grant" && !contains(names, f.Licence) {
			names = append(names, f.Licence)
		}
	}
	return strings.Join(names, ", ")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// render writes the report: a table, then each distinct text once with the
// modules it covers (twenty AWS SDK modules share one Apache text).
func render(mods []module) []byte {
	var b bytes.Buffer
	b.WriteString("# Third-party licences\n\n")
	b.WriteString("<!-- Generated by `go run ./scripts/licenses -write`; do not edit. CI fails when it is out of date. -->\n\n")
	b.WriteString("ivschatd is licensed under the Apache License 2.0 (see LICENSE and NOTICE). The released binaries\n")
	b.WriteString("(`ivschatd`, `ivschat-bench`) link the modules below; `ivschatd` also embeds the web console, which bundles\n")
	b.WriteString("the npm packages listed as `npm:<name>`. Their licence and notice texts follow the table.\n")
	b.WriteString("Modules and packages used only by tests or to build are not shipped and not listed.\n\n")
	b.WriteString("| Module | Version | Licence | Files |\n| --- | --- | --- | --- |\n")
	type group struct {
		text   string
		owners []string
	}
	var groups []*group
	byText := map[string]*group{}
	for _, m := range mods {
		var files []string
		for _, f := range m.Files {
			files = append(files, f.Name)
			g := byText[f.Text]
			if g == nil {
				g = &group{text: f.Text}
				byText[f.Text] = g
				groups = append(groups, g)
			}
			g.owners = append(g.owners, m.Path+" "+f.Name)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", m.Path, m.Version, m.licences(), strings.Join(files, ", "))
	}
	b.WriteString("\n## Texts\n")
	for _, g := range groups {
		fmt.Fprintf(&b, "\n### %s\n\n", strings.Join(g.owners, ", "))
		b.WriteString("```text\n")
		b.WriteString(strings.TrimRight(strings.ReplaceAll(g.text, "```", "'''"), "\n"))
		b.WriteString("\n```\n")
	}
	return b.Bytes()
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
