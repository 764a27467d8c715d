// Package deps holds the tests that enforce which way the module's imports
// point (deps_test.go) and that the repository needs nothing beside it
// (selfcontained_test.go). It has no code of its own.
//
// The rules:
//   - no package under pkg/ imports one under internal/ (test harnesses);
//   - pkg/canary, the core, imports only the standard library, its own
//     subpackages and the few std-only leaves named in deps_test.go;
//   - github.com/NVIDIA/go-nvml (cgo) is linked into cmd/gpu-agent and no
//     other command, and pkg/gpu/gpuapi, the gpu-agent's JSON API that
//     gates read, is cgo-free;
//   - no test, script or the Makefile reads anything outside the
//     repository (such as a shared folder beside the clone).
package deps
