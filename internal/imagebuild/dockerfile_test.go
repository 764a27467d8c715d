package imagebuild

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The Dockerfiles, for those who build with Docker (CI has none), give
// the images make image builds: the same entrypoint, user and port.
func TestDockerfilesMatchMakeImage(t *testing.T) {
	bin, err := os.Executable() // any ELF binary of this machine
	if err != nil {
		t.Fatal(err)
	}
	for file, specOf := range map[string]func(string, Meta) (Spec, error){
		"../../Dockerfile":           CanarybotSpec,
		"../../Dockerfile.gpu-agent": GPUAgentSpec,
	} {
		spec, err := specOf(bin, Meta{Created: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		entrypoint, _ := json.Marshal(spec.Entrypoint)
		want := []string{
			"ENTRYPOINT " + strings.ReplaceAll(string(entrypoint), ",", ", "),
			"USER " + spec.User,
			"EXPOSE " + strings.TrimSuffix(spec.Ports[0], "/tcp"),
			fmt.Sprintf("COPY --from=build /out/%[1]s %[2]s", strings.TrimPrefix(spec.Entrypoint[0], "/usr/local/bin/"), spec.Entrypoint[0]),
		}
		for _, w := range want {
			if !strings.Contains(string(b), "\n"+w+"\n") {
				t.Errorf("%s lacks the line %q (make image: %s)", file, w, w)
			}
		}
	}
}
