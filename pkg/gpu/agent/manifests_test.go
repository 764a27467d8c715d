package agent

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifestsDir is manifests/gpu-agent from this package.
const manifestsDir = "../../../manifests/gpu-agent"

// meta is the metadata these checks read.
type meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// daemonSet is the part of a DaemonSet these checks read.
type daemonSet struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata meta    `json:"metadata"`
			Spec     podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// service is the part of a Service these checks read.
type service struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Selector map[string]string `json:"selector"`
		Ports    []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort string `json:"targetPort"`
		} `json:"ports"`
	} `json:"spec"`
}

// container is the part of a container spec these checks read.
type container struct {
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Env     []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			FieldRef struct {
				FieldPath string `json:"fieldPath"`
			} `json:"fieldRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation bool `json:"allowPrivilegeEscalation"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
}

type podSpec struct {
	NodeSelector    map[string]string `json:"nodeSelector"`
	HostPID         bool              `json:"hostPID"`
	SecurityContext struct {
		RunAsNonRoot bool `json:"runAsNonRoot"`
	} `json:"securityContext"`
	Tolerations []struct {
		Key, Operator, Effect string
	} `json:"tolerations"`
	Containers []container `json:"containers"`
	Volumes    []struct {
		Name     string `json:"name"`
		HostPath *struct {
			Path string `json:"path"`
		} `json:"hostPath"`
	} `json:"volumes"`
}

// buildManifests runs kustomize in-process over manifests/gpu-agent, as
// `kubectl apply -k` and Argo CD would, and returns each object's YAML by
// kind.
func buildManifests(t *testing.T) map[string][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), manifestsDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", manifestsDir, err)
	}
	objs := map[string][]byte{}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := objs[r.GetKind()]; dup {
			t.Fatalf("two %s objects", r.GetKind())
		}
		objs[r.GetKind()] = b
	}
	return objs
}

// decode unmarshals the built object of kind into v.
func decode(t *testing.T, objs map[string][]byte, kind string, v any) {
	t.Helper()
	b, ok := objs[kind]
	if !ok {
		t.Fatalf("no %s built", kind)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", kind, err, b)
	}
}

func TestManifestsBuild(t *testing.T) {
	objs := buildManifests(t)
	if kinds := slices.Sorted(maps.Keys(objs)); !slices.Equal(kinds, []string{"DaemonSet", "Namespace", "Service"}) {
		t.Fatalf("built kinds %v, want DaemonSet, Namespace, Service", kinds)
	}
	var (
		ns  struct{ Metadata meta }
		ds  daemonSet
		svc service
	)
	decode(t, objs, "Namespace", &ns)
	decode(t, objs, "DaemonSet", &ds)
	decode(t, objs, "Service", &svc)
	if ns.Metadata.Name != "canarybot-gpu" || ds.Metadata.Namespace != ns.Metadata.Name || svc.Metadata.Namespace != ns.Metadata.Name {
		t.Errorf("namespace %q, DaemonSet in %q, Service in %q", ns.Metadata.Name, ds.Metadata.Namespace, svc.Metadata.Namespace)
	}
	c := checkAgentPod(t, ds.Spec.Template.Spec)
	for what, sel := range map[string]map[string]string{"DaemonSet": ds.Spec.Selector.MatchLabels, "Service": svc.Spec.Selector} {
		if len(sel) == 0 {
			t.Errorf("%s has no selector", what)
		}
		for k, v := range sel {
			if ds.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("pod template lacks the %s selector label %s=%s", what, k, v)
			}
		}
	}

	// The Service reaches the metrics port and carries the scrape hints.
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort != "metrics" {
		t.Errorf("service ports = %+v", svc.Spec.Ports)
	}
	a := svc.Metadata.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(c.Ports[0].ContainerPort) || a["prometheus.io/path"] != MetricsPath {
		t.Errorf("service annotations = %v", a)
	}
	if !strings.HasSuffix(c.Args[0], ":"+a["prometheus.io/port"]) {
		t.Errorf("--listen %q does not serve the annotated port %s", c.Args[0], a["prometheus.io/port"])
	}
}

// checkAgentPod checks the agent's pod spec and returns its container.
func checkAgentPod(t *testing.T, pod podSpec) container {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/canarybot/gpu-agent:dev" {
		t.Errorf("image %q, want kustomize's images transformer to set ghcr.io/canarybot/gpu-agent:dev", c.Image)
	}
	if !slices.Equal(c.Command, []string{"gpu-agent"}) {
		t.Errorf("command %q, want the gpu-agent binary", c.Command)
	}
	wantArgs := []string{"--listen=:9836", "--proc-root=/host/proc", "--pods-log-dir=/host/var/log/pods"}
	if len(c.Args) < len(wantArgs) || !slices.Equal(c.Args[:len(wantArgs)], wantArgs) {
		t.Fatalf("args %q, want them to start %q", c.Args, wantArgs)
	}

	// Host paths, mounted read-only where the args point.
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]string{} // mount path -> host path
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("mount %s is writable", m.MountPath)
		}
		mounts[m.MountPath] = hostPaths[m.Name]
	}
	if mounts["/host/proc"] != "/proc" || mounts["/host/var/log/pods"] != "/var/log/pods" {
		t.Errorf("mounts (path -> host path) = %v", mounts)
	}

	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		} else {
			env[e.Name] = e.Value
		}
	}
	if env["NODE_NAME"] != "fieldRef:spec.nodeName" || env["NVIDIA_VISIBLE_DEVICES"] != "all" {
		t.Errorf("env = %v", env)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9836 {
		t.Fatalf("container ports = %+v, want metrics on 9836", c.Ports)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation || !pod.SecurityContext.RunAsNonRoot || pod.HostPID {
		t.Errorf("security: container %+v, pod non-root %v, hostPID %v", c.SecurityContext, pod.SecurityContext.RunAsNonRoot, pod.HostPID)
	}
	if pod.NodeSelector["nvidia.com/gpu.present"] != "true" ||
		!slices.ContainsFunc(pod.Tolerations, func(t struct{ Key, Operator, Effect string }) bool {
			return t.Key == "nvidia.com/gpu" && t.Operator == "Exists"
		}) {
		t.Errorf("scheduling: nodeSelector %v tolerations %+v", pod.NodeSelector, pod.Tolerations)
	}
	return c
}
