package mlflowtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/canarybot/canarybot/pkg/registry/mlflow"
)

// Error codes MLflow answers with.
const (
	codeNotFound       = "RESOURCE_DOES_NOT_EXIST"
	codeInvalidParam   = "INVALID_PARAMETER_VALUE"
	codeUnauthorized   = "UNAUTHENTICATED"
	codeEndpoint       = "ENDPOINT_NOT_FOUND"
	defaultMaxResults  = 10000
	maxResultsCeiling  = 200000
	searchVersionsPath = "/api/2.0/mlflow/model-versions/search"
)

// ServeHTTP implements the REST endpoints:
//
//	GET /api/2.0/mlflow/model-versions/search?filter=&max_results=&page_token=
//	GET /api/2.0/mlflow/model-versions/get?name=&version=
//	GET /api/2.0/mlflow/model-versions/get-download-uri?name=&version=
//	GET /api/2.0/mlflow/registered-models/alias?name=&alias=
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		apiError(w, http.StatusUnauthorized, codeUnauthorized, "You are not authenticated.")
		return
	}
	handlers := map[string]func(http.ResponseWriter, *http.Request){
		searchVersionsPath:                                s.search,
		"/api/2.0/mlflow/model-versions/get":              s.getVersion,
		"/api/2.0/mlflow/model-versions/get-download-uri": s.downloadURI,
		"/api/2.0/mlflow/registered-models/alias":         s.alias,
	}
	h, ok := handlers[r.URL.Path]
	switch {
	case !ok:
		apiError(w, http.StatusNotFound, codeEndpoint, "No API endpoint at "+r.URL.Path)
	case r.Method != http.MethodGet:
		apiError(w, http.StatusMethodNotAllowed, codeEndpoint, "Method "+r.Method+" not allowed")
	default:
		h(w, r)
	}
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, err := parseFilter(q.Get("filter"))
	if err != nil {
		apiError(w, http.StatusBadRequest, codeInvalidParam, err.Error())
		return
	}
	max := defaultMaxResults
	if v := q.Get("max_results"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 1 || max > maxResultsCeiling {
			apiError(w, http.StatusBadRequest, codeInvalidParam,
				fmt.Sprintf("Invalid value for max_results: %q; it must be between 1 and %d", v, maxResultsCeiling))
			return
		}
	}
	offset, err := decodeToken(q.Get("page_token"))
	if err != nil {
		apiError(w, http.StatusBadRequest, codeInvalidParam, "Invalid page token")
		return
	}
	s.mu.Lock()
	var all []mlflow.ModelVersion
	for _, name := range sortedKeys(s.models) {
		for _, v := range s.models[name].versions {
			if filter.match(v.ModelVersion) {
				all = append(all, clone(v.ModelVersion))
			}
		}
	}
	s.mu.Unlock()
	resp := map[string]any{}
	if offset < len(all) {
		end := min(offset+max, len(all))
		resp["model_versions"] = all[offset:end]
		if end < len(all) {
			resp["next_page_token"] = encodeToken(end)
		}
	}
	writeJSON(w, resp)
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	name, ver, ok := params(w, r, "name", "version")
	if !ok {
		return
	}
	s.mu.Lock()
	v, err := s.version(name, ver)
	var mv mlflow.ModelVersion
	if err == nil {
		mv = clone(v.ModelVersion)
	}
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusNotFound, codeNotFound, err.Error())
		return
	}
	writeJSON(w, map[string]any{"model_version": mv})
}

func (s *Server) downloadURI(w http.ResponseWriter, r *http.Request) {
	name, ver, ok := params(w, r, "name", "version")
	if !ok {
		return
	}
	s.mu.Lock()
	v, err := s.version(name, ver)
	uri := ""
	if err == nil {
		uri = v.downloadURI
	}
	s.mu.Unlock()
	if err != nil {
		apiError(w, http.StatusNotFound, codeNotFound, err.Error())
		return
	}
	writeJSON(w, map[string]any{"artifact_uri": uri})
}

func (s *Server) alias(w http.ResponseWriter, r *http.Request) {
	name, alias, ok := params(w, r, "name", "alias")
	if !ok {
		return
	}
	s.mu.Lock()
	m := s.models[name]
	var (
		mv  mlflow.ModelVersion
		msg string
	)
	switch {
	case m == nil:
		msg = fmt.Sprintf("Registered Model with name=%s not found", name)
	case m.aliases[alias] == "":
		msg = fmt.Sprintf("Registered model alias %s not found.", alias)
	default:
		v, _ := s.version(name, m.aliases[alias])
		mv = clone(v.ModelVersion)
	}
	s.mu.Unlock()
	if msg != "" {
		apiError(w, http.StatusNotFound, codeNotFound, msg)
		return
	}
	writeJSON(w, map[string]any{"model_version": mv})
}

// params reads two required query parameters, answering 400 without them.
func params(w http.ResponseWriter, r *http.Request, a, b string) (string, string, bool) {
	q := r.URL.Query()
	for _, p := range []string{a, b} {
		if q.Get(p) == "" {
			apiError(w, http.StatusBadRequest, codeInvalidParam,
				fmt.Sprintf("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", p))
			return "", "", false
		}
	}
	return q.Get(a), q.Get(b), true
}

// filter is a parsed search filter: clauses joined by AND.
type filter []clause

type clause struct{ key, value string }

func (f filter) match(v mlflow.ModelVersion) bool {
	for _, c := range f {
		var got string
		var ok bool
		switch {
		case c.key == "name":
			got, ok = v.Name, true
		case c.key == "run_id":
			got, ok = v.RunID, true
		default:
			got, ok = v.Tag(strings.TrimPrefix(c.key, "tags."))
		}
		if !ok || got != c.value {
			return false
		}
	}
	return true
}

// parseFilter reads name='x', run_id="y" and tags.k = 'v' clauses joined
// by AND, which is what MLflow's model-version search supports with "=".
func parseFilter(s string) (filter, error) {
	var f filter
	rest := strings.TrimSpace(s)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		key = strings.Trim(strings.TrimSpace(key), "`")
		after = strings.TrimSpace(after)
		if !ok || key == "" || len(after) < 2 || (after[0] != '\'' && after[0] != '"') {
			return nil, fmt.Errorf("Invalid filter '%s'", s)
		}
		if key != "name" && key != "run_id" && (!strings.HasPrefix(key, "tags.") || len(key) == len("tags.")) {
			return nil, fmt.Errorf("Invalid attribute key '%s' specified. Valid keys are '{'name', 'run_id', 'tags'}'", key)
		}
		end := strings.IndexByte(after[1:], after[0])
		if end < 0 {
			return nil, fmt.Errorf("Invalid filter '%s': unterminated string", s)
		}
		f = append(f, clause{key: key, value: after[1 : end+1]})
		rest = strings.TrimSpace(after[end+2:])
		if rest == "" {
			break
		}
		if len(rest) < 4 || !strings.EqualFold(rest[:4], "AND ") {
			return nil, fmt.Errorf("Invalid filter '%s': clauses must be joined by AND", s)
		}
		rest = strings.TrimSpace(rest[4:])
	}
	return f, nil
}

func encodeToken(offset int) string {
	b, _ := json.Marshal(map[string]int{"offset": offset})
	return base64.StdEncoding.EncodeToString(b)
}

func decodeToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	var t struct {
		Offset *int `json:"offset"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Offset == nil || *t.Offset < 0 {
		return 0, fmt.Errorf("bad token")
	}
	return *t.Offset, nil
}

func clone(v mlflow.ModelVersion) mlflow.ModelVersion {
	v.Tags = append([]mlflow.Tag(nil), v.Tags...)
	v.Aliases = append([]string(nil), v.Aliases...)
	return v
}

func sortedKeys(m map[string]*model) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
}
