package tapistest

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Browser is a scripted web browser for tests: it follows redirects with
// its own cookie jar, and fills in the authenticator's pages as a user
// would: the login form, the Connect button, the device user code and the
// TTL in days. Create it with NewBrowser; it is not safe for concurrent
// use.
type Browser struct {
	User, Password string
	// UserCode is typed on the device page.
	UserCode string
	// TTLDays is typed on the device approval page; "" keeps the page's 30.
	TTLDays string

	hc *http.Client
}

// NewBrowser returns a browser with an empty cookie jar that logs in as
// user.
func NewBrowser(user, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{User: user, Password: password, hc: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// Redirects are followed by Visit, one page at a time.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Page is what the browser shows at the end of a visit.
type Page struct {
	URL    string
	Status int
	Body   string
}

var (
	inputRE  = regexp.MustCompile(`<input([^>]*)>`)
	attrRE   = regexp.MustCompile(`(\w+)="([^"]*)"`)
	errorRE  = regexp.MustCompile(`Error: [^<]*`)
	maxSteps = 20
)

// Visit opens rawURL and follows redirects and forms until a page needs
// nothing more: the answer of the client's callback, the "Congrats!" page,
// or an error. It returns the last page; an error only when a request
// fails or the pages loop.
func (b *Browser) Visit(rawURL string) (*Page, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for range maxSteps {
		p, next, err := b.step(req)
		if err != nil || next == nil {
			return p, err
		}
		req = next
	}
	return nil, errors.New("browser: too many pages")
}

// step sends req and returns the page, or the next request to send.
func (b *Browser) step(req *http.Request) (*Page, *http.Request, error) {
	resp, err := b.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	p := &Page{URL: req.URL.String(), Status: resp.StatusCode, Body: string(raw)}
	if resp.StatusCode == http.StatusFound {
		loc, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return nil, nil, fmt.Errorf("browser: bad Location: %w", err)
		}
		next, err := http.NewRequest(http.MethodGet, loc.String(), nil)
		return p, next, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return p, nil, nil
	}
	form := pageInputs(p.Body)
	switch {
	case errorRE.MatchString(p.Body) && req.Method == http.MethodPost:
		// The page refused what was typed: a user would stop here.
		return p, nil, nil
	case form.Has("username"):
		form.Set("username", b.User)
		form.Set("password", b.Password)
	case strings.Contains(p.Body, `name="approve"`):
		form.Set("approve", "true")
		if form.Has("ttl") && b.TTLDays != "" {
			form.Set("ttl", b.TTLDays)
		}
	case form.Has("user_code"):
		form.Set("user_code", b.UserCode)
	default:
		return p, nil, nil
	}
	next, err := http.NewRequest(http.MethodPost, req.URL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	next.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p, next, nil
}

// pageInputs returns the named inputs of a page with their values.
func pageInputs(body string) url.Values {
	v := url.Values{}
	for _, m := range inputRE.FindAllStringSubmatch(body, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		if name := attrs["name"]; name != "" {
			v.Set(name, attrs["value"])
		}
	}
	return v
}

// PageError returns the "Error: …" text a page shows, or "".
func (p *Page) PageError() string {
	return errorRE.FindString(p.Body)
}
