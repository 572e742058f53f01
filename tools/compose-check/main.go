// compose-check loads docker-compose.yml with Compose's own loader, as `docker compose config`
// does, and fails on any error it reports.
//
// Docker Compose v2 reads compose files through github.com/compose-spec/compose-go: it
// interpolates ${VARIABLES} from the env file, validates against the current Compose JSON
// schema (embedded in the module), checks consistency (depends_on targets, volumes, networks)
// and normalises the result. No Docker engine is needed, so CI runs it (.ci/run) where
// `docker compose config` cannot.
//
// It loads the file once per profile set: the default services alone (what the lessons run),
// each profile named in the file, and every profile at once ("*"), each with the env file, and
// then once with no env file at all, which must fail: the credentials have no defaults on
// purpose (`${MINIO_ROOT_USER:?...}`), so a learner without .env gets a clear message.
//
//	go run . -file ../../docker-compose.yml -env-file ../../.env.example [-print]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func load(ctx context.Context, file string, envFiles []string, profiles []string) (*types.Project, error) {
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithName("labkit"),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv, // reads the env files into the project environment (not the OS environment)
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return nil, err
	}
	return options.LoadProject(ctx)
}

// profilesOf lists the profiles the file's services name, from a load with every profile on.
func profilesOf(project *types.Project) []string {
	seen := map[string]bool{}
	for _, service := range project.Services {
		for _, p := range service.Profiles {
			seen[p] = true
		}
	}
	names := make([]string, 0, len(seen))
	for p := range seen {
		names = append(names, p)
	}
	sort.Strings(names)
	return names
}

func main() {
	file := flag.String("file", "docker-compose.yml", "the compose file")
	envFile := flag.String("env-file", ".env.example", "the env file (what `cp .env.example .env` gives)")
	print := flag.Bool("print", false, "print the normalised file of every profile, as `docker compose config`")
	flag.Parse()
	ctx := context.Background()
	failed := false
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
		failed = true
	}

	all, err := load(ctx, *file, []string{*envFile}, []string{"*"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %s with %s, every profile: %v\n", *file, *envFile, err)
		fmt.Fprintln(os.Stderr, "next: fix the file; `docker compose config` would stop with the same message")
		os.Exit(1)
	}
	sets := [][]string{{}} // the default services
	for _, p := range profilesOf(all) {
		sets = append(sets, []string{p})
	}
	sets = append(sets, []string{"*"})
	for _, profiles := range sets {
		project, err := load(ctx, *file, []string{*envFile}, profiles)
		label := "profiles [" + strings.Join(profiles, ",") + "]"
		if err != nil {
			fail("%s with %s, %s: %v", *file, *envFile, label, err)
			continue
		}
		fmt.Printf("ok: %s, %s: %d services: %s\n", *file, label, len(project.Services),
			strings.Join(project.ServiceNames(), " "))
		if *print {
			out, err := project.MarshalYAML()
			if err != nil {
				fail("%s: %v", label, err)
			}
			fmt.Println(string(out))
		}
	}

	// Without an env file: compose must refuse, naming what to do.
	if _, err := load(ctx, *file, []string{os.DevNull}, []string{"*"}); err == nil {
		fail("%s loads without an env file: the credentials must have no default (${NAME:?copy .env.example to .env})", *file)
	} else if !strings.Contains(err.Error(), ".env.example") {
		fail("without an env file the error does not say to copy .env.example: %v", err)
	} else {
		fmt.Printf("ok: without an env file compose refuses: %s\n", strings.SplitN(err.Error(), "\n", 2)[0])
	}
	if failed {
		fmt.Fprintln(os.Stderr, "next: fix docker-compose.yml (or .env.example); `docker compose config` shows the same errors")
		os.Exit(1)
	}
}
