package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// consoleDir holds the web console's sources. Its production npm
// dependencies are bundled into internal/console/dist, which the ivschatd
// binary embeds, so they ship like linked Go modules; its dev dependencies
// (the bundler, the type checker, the browser driver) do not.
const consoleDir = "console"

// consolePackages lists the console's production packages from its lockfile,
// with their directories under console/node_modules (npm ci fills it), where
// their licence files are read.
func consolePackages() ([]module, error) {
	raw, err := os.ReadFile(filepath.Join(consoleDir, "package-lock.json"))
	if err != nil {
		return nil, fmt.Errorf("the console's lockfile: %w", err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
			Dev     bool   `json:"dev"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		return nil, fmt.Errorf("the console's lockfile: %w", err)
	}
	var mods []module
	for key, p := range lock.Packages {
		if key == "" || p.Dev {
			continue // the console itself, or a build/test tool
		}
		dir := filepath.Join(consoleDir, filepath.FromSlash(key))
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("%s is not installed: run (cd console && npm ci)", key)
		}
		name := key[strings.LastIndex(key, "node_modules/")+len("node_modules/"):]
		mods = append(mods, module{Path: "npm:" + name, Version: p.Version, Dir: dir})
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}
