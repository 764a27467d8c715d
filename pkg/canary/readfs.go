package canary

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// ErrTooLarge marks a repo file over the size a reader accepts. Errors
// carrying it are also Terminal: retrying reads the same bytes.
var ErrTooLarge = errors.New("file too large")

// ReadRepoFile reads the regular file at repo path p of fsys, refusing
// anything that is not a regular file (a symbolic link, a directory, a
// device) and anything over limit bytes, before reading it. A missing file
// is an error wrapping fs.ErrNotExist. Errors do not repeat p unless fsys
// names it; callers say what they were reading.
func ReadRepoFile(fsys fs.FS, p string, limit int64) ([]byte, error) {
	if err := CheckRepoPath(p); err != nil {
		return nil, Terminal(err)
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, Terminal(fmt.Errorf("not a regular file (%v)", info.Mode().Type()))
	}
	if info.Size() > limit {
		return nil, Terminal(fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrTooLarge, info.Size(), limit))
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, Terminal(fmt.Errorf("%w: over the %d-byte limit", ErrTooLarge, limit))
	}
	return b, nil
}
