package argocd

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeApps is Argo CD's ApplicationService, built from its generated server
// interface and served over real gRPC: it holds Applications and records
// the refreshes and credentials it receives.
type fakeApps struct {
	applicationpkg.UnimplementedApplicationServiceServer
	mu        sync.Mutex
	apps      map[string]*v1alpha1.Application
	refreshes []string
	tokens    []string
}

func (f *fakeApps) Get(ctx context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.Application, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	f.tokens = append(f.tokens, strings.Join(md.Get(apiclient.MetaDataTokenKey), ","))
	if q.GetRefresh() != "" {
		f.refreshes = append(f.refreshes, q.GetName()+":"+q.GetRefresh())
	}
	a, ok := f.apps[q.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "applications.argoproj.io %q not found", q.GetName())
	}
	return a.DeepCopy(), nil
}

func startFake(t *testing.T, f *fakeApps) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	applicationpkg.RegisterApplicationServiceServer(s, f)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestClientReadsAndRefreshesThroughTheRealAPIClient(t *testing.T) {
	sha := strings.Repeat("a", 40)
	finished := metav1.NewTime(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	reconciled := metav1.NewTime(finished.Add(2 * time.Second))
	f := &fakeApps{apps: map[string]*v1alpha1.Application{"qwen": {
		ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "argocd"},
		Status: v1alpha1.ApplicationStatus{
			Sync:         v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: sha},
			Health:       v1alpha1.HealthStatus{Status: health.HealthStatusHealthy},
			ReconciledAt: &reconciled,
			OperationState: &v1alpha1.OperationState{Phase: synccommon.OperationSucceeded, Message: "successfully synced",
				SyncResult: &v1alpha1.SyncOperationResult{Revision: sha}, FinishedAt: &finished, RetryCount: 0},
		},
	}}}
	c, err := NewClient(ClientOptions{Server: startFake(t, f), Token: "s3cret-token", PlainText: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	st, err := c.Status(ctx, "qwen")
	if err != nil {
		t.Fatal(err)
	}
	want := AppStatus{App: "qwen", SyncStatus: "Synced", SyncRevision: sha, OperationPhase: PhaseSucceeded,
		OperationRevision: sha, OperationMessage: "successfully synced", FinishedAt: finished.Time,
		Health: HealthHealthy, ReconciledAt: reconciled.Time}
	if !st.FinishedAt.Equal(want.FinishedAt) || !st.ReconciledAt.Equal(want.ReconciledAt) {
		t.Fatalf("times: %+v", st)
	}
	st.FinishedAt, st.ReconciledAt, want.FinishedAt, want.ReconciledAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if st != want {
		t.Fatalf("status\n got %+v\nwant %+v", st, want)
	}
	if ok, why := Ready(mustStatus(t, c), sha); !ok {
		t.Fatalf("not ready: %s", why)
	}
	if err := c.Refresh(ctx, "qwen"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(ctx, "missing")
	if err == nil || status.Code(unwrapGRPC(err)) != codes.NotFound || !strings.Contains(err.Error(), "get application missing") {
		t.Fatalf("missing app: %v, want a NotFound error naming it", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.refreshes) != 1 || f.refreshes[0] != "qwen:normal" {
		t.Errorf("refreshes %v, want one qwen:normal", f.refreshes)
	}
	for _, tok := range f.tokens {
		if tok != "s3cret-token" {
			t.Fatalf("server saw token %q, want the client's", tok)
		}
	}
}

func mustStatus(t *testing.T, c *Client) AppStatus {
	t.Helper()
	st, err := c.Status(context.Background(), "qwen")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func unwrapGRPC(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}
