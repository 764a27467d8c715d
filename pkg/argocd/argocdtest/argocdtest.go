// Package argocdtest serves Argo CD's ApplicationService over real gRPC,
// from its generated server interface, for tests and benchmarks of the
// binaries that dial Argo CD through its apiclient: an Argo CD whose
// automated sync has applied every commit at once. Each Application it is
// asked about has synced, healthily, the revision Head reports for it.
package argocdtest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Server is the fake ApplicationService.
type Server struct {
	applicationpkg.UnimplementedApplicationServiceServer
	// Head returns the revision app has synced; an error makes the
	// Application not found.
	Head func(app string) (string, error)
	// Now dates the sync and the health assessment.
	Now func() time.Time

	mu    sync.Mutex
	gets  map[string]int
	addr  string
	grpcs *grpc.Server
}

// Start serves s on a loopback port until Stop.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.grpcs = grpc.NewServer()
	applicationpkg.RegisterApplicationServiceServer(s.grpcs, s)
	s.addr = ln.Addr().String()
	go func() { _ = s.grpcs.Serve(ln) }()
	return nil
}

// Addr is host:port, for --argocd-server (with --argocd-plaintext).
func (s *Server) Addr() string { return s.addr }

// Stop stops serving.
func (s *Server) Stop() { s.grpcs.Stop() }

// Gets counts the Get calls for app.
func (s *Server) Gets(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[app]
}

// Get returns app, synced and healthy at Head(app).
func (s *Server) Get(_ context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.Application, error) {
	name := q.GetName()
	s.mu.Lock()
	if s.gets == nil {
		s.gets = map[string]int{}
	}
	s.gets[name]++
	s.mu.Unlock()
	rev, err := s.Head(name)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "applications.argoproj.io %q not found: %v", name, err)
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	finished := metav1.NewTime(now.Add(-time.Second))
	reconciled := metav1.NewTime(now)
	return &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argocd"},
		Status: v1alpha1.ApplicationStatus{
			Sync:         v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: rev},
			Health:       v1alpha1.HealthStatus{Status: health.HealthStatusHealthy},
			ReconciledAt: &reconciled,
			OperationState: &v1alpha1.OperationState{Phase: synccommon.OperationSucceeded, Message: "successfully synced",
				SyncResult: &v1alpha1.SyncOperationResult{Revision: rev}, FinishedAt: &finished},
		},
	}, nil
}
