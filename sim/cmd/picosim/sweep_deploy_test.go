package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// The two ways past one machine, checked without a cluster or a network:
// the Kubernetes manifest's shape and arguments, the Dockerfile that builds
// its image, and the GitHub Actions matrix.

const repoRoot = "../../../"

// k8sJob mirrors the fields of a batch/v1 Job (and its pod template) that
// the manifest may use. It is decoded strictly, so that a misspelled field,
// which Kubernetes would reject or (with a lenient client) drop, fails here.
// A real field of batch/v1 the manifest comes to need belongs here too.
type k8sJob struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		CompletionMode          string `yaml:"completionMode"`
		Completions             *int   `yaml:"completions"`
		Parallelism             *int   `yaml:"parallelism"`
		BackoffLimit            *int   `yaml:"backoffLimit"`
		BackoffLimitPerIndex    *int   `yaml:"backoffLimitPerIndex"`
		ActiveDeadlineSeconds   *int   `yaml:"activeDeadlineSeconds"`
		TTLSecondsAfterFinished *int   `yaml:"ttlSecondsAfterFinished"`
		PodFailurePolicy        *struct {
			Rules []struct {
				Action      string `yaml:"action"`
				OnExitCodes *struct {
					ContainerName string `yaml:"containerName"`
					Operator      string `yaml:"operator"`
					Values        []int  `yaml:"values"`
				} `yaml:"onExitCodes"`
				OnPodConditions []struct {
					Type   string `yaml:"type"`
					Status string `yaml:"status"`
				} `yaml:"onPodConditions"`
			} `yaml:"rules"`
		} `yaml:"podFailurePolicy"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				RestartPolicy string         `yaml:"restartPolicy"`
				Containers    []k8sContainer `yaml:"containers"`
				Volumes       []any          `yaml:"volumes"`
				NodeSelector  map[string]any `yaml:"nodeSelector"`
				Tolerations   []any          `yaml:"tolerations"`
				Affinity      any            `yaml:"affinity"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sContainer struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	Env             []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

func deref(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func loadSweepJob(t *testing.T, src []byte) k8sJob {
	t.Helper()
	var job k8sJob
	if err := yaml.UnmarshalWithOptions(src, &job, yaml.Strict()); err != nil {
		t.Fatalf("deploy/k8s/sweep-job.yaml does not have the shape of a batch/v1 Job:\n%v", err)
	}
	return job
}

func TestSweepJobManifest(t *testing.T) {
	src, err := os.ReadFile(repoRoot + "deploy/k8s/sweep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	job := loadSweepJob(t, src)
	spec := job.Spec
	pod := spec.Template.Spec
	switch {
	case job.APIVersion != "batch/v1" || job.Kind != "Job":
		t.Fatalf("%s %s, want batch/v1 Job", job.APIVersion, job.Kind)
	case job.Metadata.Name == "":
		t.Fatal("no metadata.name")
	case spec.CompletionMode != "Indexed":
		t.Fatalf("completionMode %q: Indexed gives each pod the index its shard comes from", spec.CompletionMode)
	case spec.Completions == nil || *spec.Completions < 1:
		t.Fatal("no completions: the number of shards")
	case spec.Parallelism == nil || *spec.Parallelism < 1 || *spec.Parallelism > *spec.Completions:
		t.Fatalf("parallelism %v: 1 to completions, %d", deref(spec.Parallelism), *spec.Completions)
	case spec.BackoffLimit == nil:
		t.Fatal("no backoffLimit: a pod lost would be retried 6 times, the default, without saying so")
	case pod.RestartPolicy != "Never":
		t.Fatalf("restartPolicy %q: Never, so that a retried shard is a new pod (and podFailurePolicy needs it)", pod.RestartPolicy)
	case len(pod.Containers) != 1:
		t.Fatalf("%d containers, want the sweep's alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image == "" || c.Name == "" {
		t.Fatalf("container name %q image %q", c.Name, c.Image)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("resources: %s needs a request and a limit (requests %v, limits %v)", r, c.Resources.Requests, c.Resources.Limits)
		}
	}
	if spec.PodFailurePolicy != nil {
		for _, r := range spec.PodFailurePolicy.Rules {
			if r.OnExitCodes != nil && r.OnExitCodes.ContainerName != c.Name {
				t.Errorf("podFailurePolicy names container %q, not %q", r.OnExitCodes.ContainerName, c.Name)
			}
		}
	}
	if len(c.Command) != 1 || !strings.HasSuffix(c.Command[0], "/picosim") || len(c.Args) == 0 || c.Args[0] != "sweep" {
		t.Fatalf("command %q args %q: want picosim sweep ...", c.Command, c.Args)
	}

	// The arguments through sweep's own parser, in each pod as Kubernetes
	// starts it ($(VAR) in args is expanded from the container's
	// environment): pod k runs shard k+1 of completions, the whole of its
	// standard output is the document, and a failing seed is no crash.
	n := *spec.Completions
	for k := range n {
		index := strconv.Itoa(k)
		t.Setenv(jobIndexEnv, index)
		var args []string
		for _, a := range c.Args[1:] {
			args = append(args, strings.ReplaceAll(a, "$("+jobIndexEnv+")", index))
		}
		var stderr bytes.Buffer
		sw, code, ok := parseSweep(args, &stderr)
		if !ok {
			t.Fatalf("pod %d: picosim sweep %q: exit %d\n%s", k, args, code, stderr.String())
		}
		if sw.shard != (shard{uint64(k + 1), uint64(n)}) {
			t.Fatalf("pod %d of completions %d runs shard %v: the N of --shard auto/N must be completions", k, n, sw.shard)
		}
		if !sw.json || sw.progress != 0 || !sw.exitZero {
			t.Fatalf("pod %d: --json %v, --progress %v, --exit-zero %v: the pod's log must be its document alone, and a failing seed must not fail the pod",
				k, sw.json, sw.progress, sw.exitZero)
		}
	}
}

// TestSweepJobManifestCheckIsStrict: the check above fails on a misspelled
// field, which is what it is for.
func TestSweepJobManifestCheckIsStrict(t *testing.T) {
	src, err := os.ReadFile(repoRoot + "deploy/k8s/sweep-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(src, []byte("restartPolicy:"), []byte("restartpolicy:"), 1)
	var job k8sJob
	if err := yaml.UnmarshalWithOptions(bad, &job, yaml.Strict()); err == nil || !strings.Contains(err.Error(), "restartpolicy") {
		t.Fatalf("a misspelled restartPolicy decoded: %v", err)
	}
}

// TestSweepDockerfile: the image builds the command that exists, with the
// Go of go.mod, to where the manifest runs it, tagged as the README says.
func TestSweepDockerfile(t *testing.T) {
	df, err := os.ReadFile(repoRoot + "deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, _ := os.ReadFile(repoRoot + "go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllSubmatch(df, -1)
	if goVersion == nil || len(froms) < 2 || string(froms[0][1]) != "golang:"+string(goVersion[1]) {
		t.Fatalf("want a build stage FROM golang:%s (go.mod) and a runtime stage; FROMs %q", goVersion[1], froms)
	}
	build := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 go build .*-o (\S+) (\./\S+)$`).FindSubmatch(df)
	if build == nil {
		t.Fatal("no static build of the command (RUN CGO_ENABLED=0 go build ... -o OUT ./PKG): the runtime image has no C library")
	}
	if _, err := os.Stat(repoRoot + string(build[2]) + "/main.go"); err != nil || string(build[2]) != "./sim/cmd/picosim" {
		t.Fatalf("the Dockerfile builds %s, not the picosim command: %v", build[2], err)
	}
	src, _ := os.ReadFile(repoRoot + "deploy/k8s/sweep-job.yaml")
	job := loadSweepJob(t, src)
	c := job.Spec.Template.Spec.Containers[0]
	if want := fmt.Sprintf("COPY --from=build %s %s\n", build[1], c.Command[0]); !bytes.Contains(df, []byte(want)) {
		t.Errorf("the Dockerfile has no %q: the manifest runs %s", want, c.Command[0])
	}
	readme, _ := os.ReadFile(repoRoot + "README.md")
	if want := "docker build -f deploy/Dockerfile -t " + c.Image + " ."; !bytes.Contains(readme, []byte(want)) {
		t.Errorf("the README does not build the manifest's image %s (%q)", c.Image, want)
	}
}

// TestSweepWorkflowShardsAndMerges: a matrix job per shard writes and
// uploads a document, with flags picosim sweep takes; a merge job after
// them all downloads and merges them. (TestWorkflowsAreActionlintClean
// checks the rest.)
func TestSweepWorkflowShardsAndMerges(t *testing.T) {
	src, err := os.ReadFile(repoRoot + ".github/workflows/sweep.yml")
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
	}
	var w struct {
		On struct {
			WorkflowDispatch struct {
				Inputs map[string]struct {
					Default string `yaml:"default"`
				} `yaml:"inputs"`
			} `yaml:"workflow_dispatch"`
		} `yaml:"on"`
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Needs    any `yaml:"needs"`
			If       string
			Strategy struct {
				Matrix map[string]any `yaml:"matrix"`
			} `yaml:"strategy"`
			Steps []step `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(src, &w); err != nil {
		t.Fatal(err)
	}
	shardJob, merge := w.Jobs["shard"], w.Jobs["merge"]
	if shardJob.Strategy.Matrix["shard"] == nil {
		t.Fatalf("the shard job has no matrix over shards: %v", shardJob.Strategy.Matrix)
	}
	if merge.Needs != "shard" || !strings.Contains(merge.If, "!cancelled()") {
		t.Fatalf("merge: needs %v, if %q; want needs shard, and to run when a shard failed", merge.Needs, merge.If)
	}

	// The env's values are the inputs, or on a schedule the same defaults.
	vars := map[string]string{"SHARD": "3"}
	for name, v := range w.Env {
		m := regexp.MustCompile(`^\$\{\{ inputs\.(\w+) \|\| '?([^']*?)'? \}\}$`).FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("env %s: %q, want ${{ inputs.x || default }}", name, v)
		}
		if in := w.On.WorkflowDispatch.Inputs[m[1]]; in.Default != m[2] {
			t.Errorf("env %s defaults to %q, input %s to %q: a scheduled run would differ", name, m[2], m[1], in.Default)
		}
		vars[name] = m[2]
	}
	var sweepLine, artifact string
	for _, s := range shardJob.Steps {
		if i := strings.Index(s.Run, "./picosim sweep "); i >= 0 {
			sweepLine = strings.ReplaceAll(s.Run[i:], "\\\n", " ")
			sweepLine, _, _ = strings.Cut(sweepLine, "\n")
		}
		if strings.HasPrefix(s.Uses, "actions/upload-artifact") {
			artifact = s.With["name"]
		}
	}
	if sweepLine == "" || artifact == "" {
		t.Fatalf("the shard job runs no picosim sweep (%q) or uploads nothing (%q)", sweepLine, artifact)
	}
	// The command as bash runs it on a scheduled run, through sweep's parser.
	expanded := os.Expand(strings.ReplaceAll(sweepLine, `"`, ""), func(v string) string {
		if v == "flags[@]" {
			return vars["FLAGS"]
		}
		return vars[v]
	})
	args := strings.Fields(expanded)[2:]
	var stderr bytes.Buffer
	sw, code, ok := parseSweep(args, &stderr)
	if !ok {
		t.Fatalf("picosim sweep %q: exit %d\n%s", args, code, stderr.String())
	}
	if sw.shard.String() != "3/"+vars["SHARDS"] || sw.out != "shard-3.json" || !sw.exitZero {
		t.Fatalf("shard 3 runs --shard %v --out %q --exit-zero %v", sw.shard, sw.out, sw.exitZero)
	}

	var merges, downloads bool
	for _, s := range merge.Steps {
		merges = merges || strings.Contains(s.Run, "picosim sweep merge ")
		if strings.HasPrefix(s.Uses, "actions/download-artifact") {
			pattern := strings.TrimSuffix(s.With["pattern"], "*")
			downloads = pattern != "" && strings.HasPrefix(artifact, pattern)
		}
	}
	if !merges || !downloads {
		t.Fatalf("merge: runs picosim sweep merge %v, downloads the shards' artifacts (%s) %v", merges, artifact, downloads)
	}
}
