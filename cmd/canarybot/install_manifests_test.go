package main

import (
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/canarybot/canarybot/internal/imagebuild"
)

// installDir is manifests/install from this package: the base, and its
// overlays.
const installDir = "../../manifests/install"

// k8sMeta is the metadata these checks read.
type k8sMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

// installObj is any built object: what every check reads first.
type installObj struct {
	Kind     string  `json:"kind"`
	Metadata k8sMeta `json:"metadata"`
}

// buildInstall runs kustomize in-process over dir (relative to
// manifests/install), as `kubectl apply -k` does, and returns each
// object's YAML by "Kind/name".
func buildInstall(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), path.Join(installDir, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := map[string][]byte{}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		key := r.GetKind() + "/" + r.GetName()
		if _, dup := objs[key]; dup {
			t.Fatalf("%s built twice", key)
		}
		objs[key] = b
	}
	return objs
}

// decodeInstall unmarshals the built object key into v.
func decodeInstall(t *testing.T, objs map[string][]byte, key string, v any) {
	t.Helper()
	b, ok := objs[key]
	if !ok {
		t.Fatalf("no %s built (have %v)", key, slices.Sorted(maps.Keys(objs)))
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", key, err, b)
	}
}

// installContainer is the part of the bot's container these checks read.
type installContainer struct {
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Env   []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef    *struct{ Name, Key string } `json:"secretKeyRef"`
			ConfigMapKeyRef *struct{ Name, Key string } `json:"configMapKeyRef"`
			FieldRef        *struct {
				FieldPath string `json:"fieldPath"`
			} `json:"fieldRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	LivenessProbe, ReadinessProbe *installProbe
	Resources                     struct {
		Requests, Limits map[string]string
	} `json:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name, MountPath string
		ReadOnly        bool `json:"readOnly"`
	} `json:"volumeMounts"`
}

// installProbe is a probe as these checks read it.
type installProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
}

// installVolume is a pod volume as these checks read it.
type installVolume struct {
	Name     string    `json:"name"`
	EmptyDir *struct{} `json:"emptyDir"`
	Secret   *struct {
		SecretName string `json:"secretName"`
		Items      []struct{ Key, Path string }
	} `json:"secret"`
}

// installDeployment is the part of the Deployment these checks read.
type installDeployment struct {
	Metadata k8sMeta `json:"metadata"`
	Spec     struct {
		Replicas int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata k8sMeta `json:"metadata"`
			Spec     struct {
				ServiceAccountName string `json:"serviceAccountName"`
				SecurityContext    struct {
					RunAsNonRoot   bool  `json:"runAsNonRoot"`
					RunAsUser      int64 `json:"runAsUser"`
					SeccompProfile struct {
						Type string `json:"type"`
					} `json:"seccompProfile"`
				} `json:"securityContext"`
				Containers []installContainer `json:"containers"`
				Volumes    []installVolume    `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// The base builds the objects a cluster needs for two `canarybot serve`
// replicas in organisation mode, and no Secret: it names them only.
func TestInstallManifestsBase(t *testing.T) {
	objs := buildInstall(t, ".")
	var kinds []string
	for key, b := range objs {
		var o installObj
		decodeInstall(t, objs, key, &o)
		kinds = append(kinds, o.Kind)
		if o.Kind != "Namespace" && o.Metadata.Namespace != "canarybot" {
			t.Errorf("%s in namespace %q, want canarybot", key, o.Metadata.Namespace)
		}
		if o.Metadata.Labels["app.kubernetes.io/part-of"] != "canarybot" {
			t.Errorf("%s lacks app.kubernetes.io/part-of: canarybot", key)
		}
		if o.Kind == "Secret" || strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s holds a credential:\n%s", key, b)
		}
	}
	want := []string{"ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}
	if slices.Sort(kinds); !slices.Equal(kinds, want) {
		t.Errorf("built kinds %v, want %v", kinds, want)
	}
	var ns struct{ Metadata k8sMeta }
	decodeInstall(t, objs, "Namespace/canarybot", &ns)
	if ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels %v: want the restricted Pod Security Standard enforced", ns.Metadata.Labels)
	}
	var d installDeployment
	decodeInstall(t, objs, "Deployment/canarybot", &d)
	c := checkPod(t, d)
	checkServeArgs(t, c, d)
	checkPodPeers(t, objs, d)
}

// checkPod checks the pod's shape: replicas, security, probes, resources.
func checkPod(t *testing.T, d installDeployment) installContainer {
	t.Helper()
	pod := d.Spec.Template.Spec
	if d.Spec.Replicas != 2 || pod.ServiceAccountName != "canarybot" || len(pod.Containers) != 1 {
		t.Fatalf("replicas %d, service account %q, %d containers; want 2, canarybot, 1", d.Spec.Replicas, pod.ServiceAccountName, len(pod.Containers))
	}
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser != imagebuild.NonRoot || sc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser %d (the image's), seccomp RuntimeDefault", sc, imagebuild.NonRoot)
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v: want runAsNonRoot, a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if c.Image != "ghcr.io/canarybot/canarybot:dev" {
		t.Errorf("image %q, want kustomize's images transformer to set ghcr.io/canarybot/canarybot:dev", c.Image)
	}
	for name, p := range map[string]*installProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		// The metrics port answers from the start on both replicas; --listen
		// only on the leader (TestServeStandbyAnswersProbes).
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != "metrics" {
			t.Errorf("%s probe %+v: want GET /healthz on the metrics port", name, p)
		}
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("resources %+v: want requests and limits of %s", c.Resources, r)
		}
	}
	return c
}

// checkServeArgs parses the container's args with serve's own flags: an
// App serving every repository (no --plan, no --repo) with
// --leader-elect, every $(VAR) defined, every listen address a declared
// port, --dir on an emptyDir, the key file in the Secret's volume, and
// every credential from a Secret.
func checkServeArgs(t *testing.T, c installContainer, d installDeployment) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %q: want serve …", c.Args)
	}
	env := map[string]bool{}
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			fromSecret[e.Name] = true
		}
		if e.Value != "" && regexp.MustCompile(`SECRET|TOKEN|KEY|PASSWORD`).MatchString(e.Name) {
			t.Errorf("env %s has a literal value: a credential must come from a Secret", e.Name)
		}
	}
	// The kubelet expands $(VAR) from the container's env: here each
	// variable stands for itself, and GITHUB_APP_ID for a number.
	args := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(strings.Join(c.Args[1:], "\x00"), func(m string) string {
		name := m[2 : len(m)-1]
		if !env[name] {
			t.Errorf("args use %s, which the container's env does not define", m)
		}
		if name == "GITHUB_APP_ID" {
			return "123456"
		}
		return name
	})
	cmd, _, err := newRoot(io.Discard, io.Discard).Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(strings.Split(args, "\x00")); err != nil {
		t.Fatalf("serve does not take the Deployment's args: %v", err)
	}
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	if flag("plan") != "" || flag("repo") != "[]" || flag("github-repository") != "[]" || flag("leader-elect") != "true" ||
		flag("github-app-id") != "123456" || flag("leader-elect-identity") != "POD_NAME" ||
		flag("leader-elect-namespace") != "POD_NAMESPACE" || flag("log-format") != "json" {
		t.Errorf("args %q: want an App serving every repository with --leader-elect, the pod's name as its identity", c.Args)
	}
	for _, name := range []string{"webhook-secret-env", "argocd-token-env"} {
		if !fromSecret[flag(name)] {
			t.Errorf("--%s %s: the variable must come from a Secret", name, flag(name))
		}
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for flagName, port := range map[string]string{"listen": "http", "metrics-listen": "metrics"} {
		if _, p, err := net.SplitHostPort(flag(flagName)); err != nil || p != fmt.Sprint(ports[port]) {
			t.Errorf("--%s %s: want the %s port, %d", flagName, flag(flagName), port, ports[port])
		}
	}
	checkMounts(t, c, d, flag("dir"), flag("github-private-key-file"))
}

// checkMounts: --dir lies on an emptyDir, /tmp is writable, and the
// App's key file is an item of the Secret volume mounted read-only.
func checkMounts(t *testing.T, c installContainer, d installDeployment, dir, keyFile string) {
	t.Helper()
	mounted := func(p string) (vol string, rel string) {
		for _, m := range c.VolumeMounts {
			if r, ok := strings.CutPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/"); ok || p == m.MountPath {
				return m.Name, r
			}
		}
		return "", ""
	}
	volume := func(name string) installVolume {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == name {
				return v
			}
		}
		return installVolume{}
	}
	for _, p := range []string{dir, "/tmp"} {
		if v, _ := mounted(p); volume(v).EmptyDir == nil {
			t.Errorf("%s is not on an emptyDir (the root filesystem is read-only)", p)
		}
	}
	v, rel := mounted(keyFile)
	if sec := volume(v).Secret; sec == nil ||
		!slices.ContainsFunc(sec.Items, func(i struct{ Key, Path string }) bool { return i.Path == rel }) {
		t.Errorf("--github-private-key-file %s is not an item of a Secret volume", keyFile)
	}
}

// checkPodPeers: the Role holds exactly what --leader-elect needs, bound
// to the pod's service account; the Service, PDB and ConfigMap match the
// pod.
func checkPodPeers(t *testing.T, objs map[string][]byte, d installDeployment) {
	t.Helper()
	var role struct {
		Rules []struct {
			APIGroups, Resources, ResourceNames, Verbs []string
		}
	}
	decodeInstall(t, objs, "Role/canarybot-leader-election", &role)
	if got := fmt.Sprint(role.Rules); got != "[{[coordination.k8s.io] [leases] [] [create]} {[coordination.k8s.io] [leases] [canarybot] [get update]}]" {
		t.Errorf("Role rules %s: want create on leases, get and update on the Lease canarybot, nothing else", got)
	}
	var rb struct {
		RoleRef  struct{ Kind, Name string }
		Subjects []struct{ Kind, Name, Namespace string }
	}
	decodeInstall(t, objs, "RoleBinding/canarybot-leader-election", &rb)
	if fmt.Sprint(rb) != "{{Role canarybot-leader-election} [{ServiceAccount canarybot canarybot}]}" {
		t.Errorf("RoleBinding %+v", rb)
	}
	pod := d.Spec.Template.Metadata.Labels
	var svc struct {
		Spec struct {
			Selector map[string]string
			Ports    []struct{ Name, TargetPort string }
		}
	}
	decodeInstall(t, objs, "Service/canarybot", &svc)
	var pdb struct {
		Spec struct {
			MinAvailable int
			Selector     struct{ MatchLabels map[string]string }
		}
	}
	decodeInstall(t, objs, "PodDisruptionBudget/canarybot", &pdb)
	for what, sel := range map[string]map[string]string{"Deployment": d.Spec.Selector.MatchLabels, "Service": svc.Spec.Selector,
		"PodDisruptionBudget": pdb.Spec.Selector.MatchLabels} {
		if len(sel) == 0 || !matches(sel, pod) {
			t.Errorf("%s selector %v does not select the pod %v", what, sel, pod)
		}
	}
	if pdb.Spec.MinAvailable != 1 || len(svc.Spec.Ports) != 2 {
		t.Errorf("PDB minAvailable %d, Service ports %v", pdb.Spec.MinAvailable, svc.Spec.Ports)
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			var cm struct{ Data map[string]string }
			decodeInstall(t, objs, "ConfigMap/"+e.ValueFrom.ConfigMapKeyRef.Name, &cm)
			if cm.Data[e.ValueFrom.ConfigMapKeyRef.Key] == "" {
				t.Errorf("env %s: ConfigMap %s has no %s", e.Name, e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
			}
		}
	}
}

// matches reports whether labels carry every pair of sel.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// The overlays add an Ingress for the webhook path alone, and a
// ServiceMonitor on the metrics port, to the base unchanged.
func TestInstallManifestsOverlays(t *testing.T) {
	base := buildInstall(t, "base")
	for _, o := range []struct{ dir, added string }{
		{"overlays/ingress", "Ingress/canarybot"},
		{"overlays/servicemonitor", "ServiceMonitor/canarybot"},
	} {
		objs := buildInstall(t, o.dir)
		want := append(slices.Collect(maps.Keys(base)), o.added)
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(objs)); !slices.Equal(got, want) {
			t.Errorf("%s builds %v: want the base and %s", o.dir, got, o.added)
		}
		if string(objs["Deployment/canarybot"]) != string(base["Deployment/canarybot"]) {
			t.Errorf("%s changes the Deployment", o.dir)
		}
	}
	var ing struct {
		Spec struct {
			Rules []struct {
				HTTP struct {
					Paths []struct {
						Path, PathType string
						Backend        struct {
							Service struct {
								Name string
								Port struct{ Name string }
							}
						}
					}
				}
			}
		}
	}
	decodeInstall(t, buildInstall(t, "overlays/ingress"), "Ingress/canarybot", &ing)
	if got := fmt.Sprint(ing.Spec.Rules); len(ing.Spec.Rules) != 1 || got != "[{{[{/webhooks/github Exact {{canarybot {http}}}}]}}]" {
		t.Errorf("Ingress rules %s: want POST /webhooks/github alone, to the Service's http port", got)
	}
	var sm struct {
		Spec struct {
			Selector  struct{ MatchLabels map[string]string }
			Endpoints []struct{ Port, Path string }
		}
	}
	decodeInstall(t, buildInstall(t, "overlays/servicemonitor"), "ServiceMonitor/canarybot", &sm)
	var svc struct{ Metadata k8sMeta }
	decodeInstall(t, base, "Service/canarybot", &svc)
	if !matches(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) || fmt.Sprint(sm.Spec.Endpoints) != "[{metrics /metrics}]" {
		t.Errorf("ServiceMonitor %+v: want /metrics on the Service's metrics port", sm.Spec)
	}
}

// The overlay README's "Install on a cluster" tells users to write beside
// their clone builds: their image, settings, host and --argocd-insecure,
// on the base unchanged otherwise.
func TestInstallManifestsReadmeOverlay(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)\n *```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(b[1], "../canarybot/manifests/install/overlays/ingress") {
			block = b[1]
		}
	}
	if block == "" {
		t.Fatal("README has no overlay of manifests/install/overlays/ingress in a yaml block")
	}
	indent := len(block) - len(strings.TrimLeft(block, " "))
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		lines = append(lines, strings.TrimPrefix(l, strings.Repeat(" ", indent)))
	}
	dir := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(repo, filepath.Join(dir, "canarybot")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "canarybot-install"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "canarybot-install", "kustomization.yaml"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "canarybot-install"))
	if err != nil {
		t.Fatalf("kustomize build of README's overlay: %v\n%s", err, block)
	}
	objs := map[string][]byte{}
	for _, r := range m.Resources() {
		if objs[r.GetKind()+"/"+r.GetName()], err = r.AsYAML(); err != nil {
			t.Fatal(err)
		}
	}
	var d installDeployment
	decodeInstall(t, objs, "Deployment/canarybot", &d)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/acme/canarybot:v1.0.0" || c.Args[len(c.Args)-1] != "--argocd-insecure" {
		t.Errorf("image %q, args %q: want the overlay's image and --argocd-insecure", c.Image, c.Args)
	}
	checkServeArgs(t, c, d)
	checkPodPeers(t, objs, d)
	if !strings.Contains(string(objs["Ingress/canarybot"]), "host: canarybot.acme.example") {
		t.Errorf("Ingress:\n%s", objs["Ingress/canarybot"])
	}
}
