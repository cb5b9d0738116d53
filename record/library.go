package record

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"liveroom/room"
)

// Library is the recorded shows under a directory: {dir}/{room}/{show}/.
// Ids are checked before any path is built, so no request reaches outside.
type Library struct {
	dir string

	mu       sync.Mutex
	total    int64
	totalAge time.Time

	// cluster mode (set by the Recorder): a show swept here, a show closed
	// after a crash, told to the manifest.
	onSwept     func(roomID, showID string)
	onRecovered func(m Meta)
}

// NewLibrary opens the recordings under dir (read-only use: a node that
// serves replays without recording).
func NewLibrary(dir string) *Library { return &Library{dir: dir} }

// ErrNoShow: no such show (or a bad id).
var ErrNoShow = errors.New("show not found")

var (
	showIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	fileNames     = regexp.MustCompile(`^(init-[0-9]{1,6}\.mp4|seg-[0-9]{5,7}\.m4s|index\.m3u8)$`)
)

// ValidShowID reports whether id can name a show.
func ValidShowID(id string) bool { return showIDPattern.MatchString(id) }

func (l *Library) showDir(roomID, showID string) (string, error) {
	if !room.ValidID(roomID) || !ValidShowID(showID) {
		return "", ErrNoShow
	}
	return filepath.Join(l.dir, roomID, showID), nil
}

// Chapter is a product's presentation: when it was pinned.
type Chapter struct {
	T       float64         `json:"t"`
	Title   string          `json:"title"`
	Product json.RawMessage `json:"product"`
}

// Show is a show as the API lists it.
type Show struct {
	Meta
	Ended    bool      `json:"ended"` // false while recording
	Chapters []Chapter `json:"chapters"`
}

// Meta reads a show's meta.json.
func (l *Library) Meta(roomID, showID string) (Meta, error) {
	dir, err := l.showDir(roomID, showID)
	if err != nil {
		return Meta{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return Meta{}, ErrNoShow
	}
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("show %s/%s: %w", roomID, showID, err)
	}
	return m, nil
}

// Get is a show with its chapters.
func (l *Library) Get(roomID, showID string) (Show, error) {
	m, err := l.Meta(roomID, showID)
	if err != nil {
		return Show{}, err
	}
	script, err := l.Script(roomID, showID)
	if err != nil {
		return Show{}, err
	}
	return Show{Meta: m, Ended: m.EndedAt != nil, Chapters: chapters(script)}, nil
}

// List is a room's shows, newest first.
func (l *Library) List(roomID string) ([]Show, error) {
	if !room.ValidID(roomID) {
		return nil, ErrNoShow
	}
	ents, err := os.ReadDir(filepath.Join(l.dir, roomID))
	if errors.Is(err, fs.ErrNotExist) {
		return []Show{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Show{}
	for _, e := range ents {
		if !e.IsDir() || !ValidShowID(e.Name()) {
			continue
		}
		if s, err := l.Get(roomID, e.Name()); err == nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Show) int { return b.StartedAt.Compare(a.StartedAt) })
	return out, nil
}

// Delete removes a show.
func (l *Library) Delete(roomID, showID string) error {
	dir, err := l.showDir(roomID, showID)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, metaName)); err != nil {
		return ErrNoShow
	}
	// Rename first: a half-deleted show is never served.
	gone := dir + ".deleted"
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	l.invalidate()
	return os.RemoveAll(gone)
}

// File opens one of a show's media files (playlist, init, segment); any
// other name is ErrNoShow.
func (l *Library) File(roomID, showID, name string) (*os.File, error) {
	dir, err := l.showDir(roomID, showID)
	if err != nil || !fileNames.MatchString(name) {
		return nil, ErrNoShow
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoShow
	}
	return f, err
}

// Playlist is a show's playlist, its URIs rewritten by sign (nil: as is).
func (l *Library) Playlist(roomID, showID string, sign func(string) string) (string, error) {
	f, err := l.File(roomID, showID, playlistName)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := readCapped(f, 4<<20)
	if err != nil {
		return "", err
	}
	entries, ended := parsePlaylist(string(b))
	return renderPlaylist(entries, ended, sign), nil
}

// Script is a show's product script, in order.
func (l *Library) Script(roomID, showID string) ([]Entry, error) {
	return l.readLog(roomID, showID, scriptName)
}

// Chat is a show's chat as it should be replayed: messages deleted later,
// and those of users banned later, are left out.
func (l *Library) Chat(roomID, showID string) ([]Entry, error) {
	all, err := l.readLog(roomID, showID, chatName)
	if err != nil {
		return nil, err
	}
	return replayChat(all), nil
}

// replayChat is the chat log's messages as replay shows them: without the
// messages deleted later and those of users banned later.
func replayChat(all []Entry) []Entry {
	deleted, banned := map[string]bool{}, map[string]bool{}
	for _, e := range all {
		var d struct {
			MessageID string `json:"message_id"`
			UserID    string `json:"user_id"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case "chat.deleted":
			deleted[d.MessageID] = true
		case "user.banned":
			banned[d.UserID+d.User.ID] = true
		case "user.unbanned":
			delete(banned, d.UserID+d.User.ID)
		}
	}
	out := []Entry{}
	for _, e := range all {
		if e.Type != "chat.message" {
			continue
		}
		var m struct {
			Message struct {
				ID     string `json:"id"`
				UserID string `json:"user_id"`
				User   struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"message"`
		}
		_ = json.Unmarshal(e.Data, &m)
		if deleted[m.Message.ID] || banned[m.Message.UserID+m.Message.User.ID] {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (l *Library) readLog(roomID, showID, name string) ([]Entry, error) {
	dir, err := l.showDir(roomID, showID)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []Entry{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil { // a line cut by a crash is skipped
			out = append(out, e)
		}
	}
	return out, nil
}

// chapters are the product script's pins.
func chapters(script []Entry) []Chapter {
	out := []Chapter{}
	for _, e := range script {
		if e.Type != "product.pinned" {
			continue
		}
		var d struct {
			Product json.RawMessage `json:"product"`
		}
		if json.Unmarshal(e.Data, &d) != nil {
			continue
		}
		var p struct {
			Title string `json:"title"`
			Name  string `json:"name"`
		}
		_ = json.Unmarshal(d.Product, &p)
		title := p.Title
		if title == "" {
			title = p.Name
		}
		out = append(out, Chapter{T: e.T, Title: title, Product: d.Product})
	}
	return out
}

// recover closes the shows a crash left open: their playlist gets its
// end and their meta an end time. It returns how many it closed.
func (l *Library) recover() (int, error) {
	n := 0
	err := l.eachShow(func(roomID, showID string, m Meta) {
		if m.EndedAt != nil {
			return
		}
		dir := filepath.Join(l.dir, roomID, showID)
		if b, err := os.ReadFile(filepath.Join(dir, playlistName)); err == nil {
			entries, _ := parsePlaylist(string(b))
			_ = writeFileSync(filepath.Join(dir, playlistName), []byte(renderPlaylist(entries, true, nil)))
			var d time.Duration
			for _, e := range entries {
				d += e.dur
			}
			m.DurationS = d.Seconds()
		}
		m.Bytes = dirBytes(dir)
		now := time.Now().UTC()
		m.EndedAt = &now
		m.Stopped = "server_restart"
		if b, err := json.Marshal(m); err == nil {
			_ = writeFileSync(filepath.Join(dir, metaName), b)
		}
		if l.onRecovered != nil {
			l.onRecovered(m)
		}
		n++
	})
	return n, err
}

// eachShow calls fn for every show with a readable meta.
func (l *Library) eachShow(fn func(roomID, showID string, m Meta)) error {
	rooms, err := os.ReadDir(l.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, r := range rooms {
		if !r.IsDir() || !room.ValidID(r.Name()) {
			continue
		}
		shows, err := os.ReadDir(filepath.Join(l.dir, r.Name()))
		if err != nil {
			continue
		}
		for _, s := range shows {
			if !s.IsDir() || !ValidShowID(s.Name()) {
				if s.IsDir() && filepath.Ext(s.Name()) == ".deleted" {
					_ = os.RemoveAll(filepath.Join(l.dir, r.Name(), s.Name())) // a delete cut short
				}
				continue
			}
			if m, err := l.Meta(r.Name(), s.Name()); err == nil {
				fn(r.Name(), s.Name(), m)
			}
		}
	}
	return nil
}

// sweep removes shows older than days, then the oldest ended shows while
// the total is over maxBytes; shows in active are kept.
func (l *Library) sweep(days int, maxBytes int64, active map[string]bool) (int, error) {
	type item struct {
		room, id string
		m        Meta
	}
	var all []item
	if err := l.eachShow(func(roomID, showID string, m Meta) { all = append(all, item{roomID, showID, m}) }); err != nil {
		return 0, err
	}
	slices.SortFunc(all, func(a, b item) int { return a.m.StartedAt.Compare(b.m.StartedAt) })
	var total int64
	for _, it := range all {
		total += it.m.Bytes
	}
	n := 0
	cutoff := time.Now().AddDate(0, 0, -days)
	for _, it := range all {
		if active[it.room+"/"+it.id] {
			continue
		}
		old := days > 0 && it.m.StartedAt.Before(cutoff)
		over := maxBytes > 0 && total > maxBytes
		if !old && !over {
			continue
		}
		if err := l.Delete(it.room, it.id); err == nil {
			total -= it.m.Bytes
			n++
			if l.onSwept != nil {
				l.onSwept(it.room, it.id)
			}
		}
	}
	l.invalidate()
	return n, nil
}

// totalBytes is all recordings' size, from their metas (cached 5 s).
func (l *Library) totalBytes() int64 {
	l.mu.Lock()
	if time.Since(l.totalAge) < 5*time.Second {
		defer l.mu.Unlock()
		return l.total
	}
	l.mu.Unlock()
	var t int64
	_ = l.eachShow(func(_, _ string, m Meta) { t += m.Bytes })
	l.mu.Lock()
	l.total, l.totalAge = t, time.Now()
	l.mu.Unlock()
	return t
}

func (l *Library) invalidate() {
	l.mu.Lock()
	l.totalAge = time.Time{}
	l.mu.Unlock()
}

func dirBytes(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			n += fi.Size()
		}
	}
	return n
}

func readCapped(f *os.File, max int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", f.Name(), fi.Size(), max)
	}
	b := make([]byte, fi.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}
