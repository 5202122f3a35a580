package tapistest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The browser pages of the authenticator (tapis-flows.md §0, §1, §4): the
// login form, the consent page, the device user-code and approval pages,
// and the Flask session cookie that carries the login between them. The
// fake keeps the session server-side under an opaque cookie value; the
// real cookie is a signed JSON object, which no client may read anyway.

// Lifetimes of the browser flows (tapis-flows.md §0, §1.2).
const (
	// sessionLifetime is how long a browser login lasts after the cookie
	// was last re-issued.
	sessionLifetime = 15 * time.Minute
	// codeLifetime and codeGrace: an authorization code is good for 600 s,
	// with 6 s of grace.
	codeLifetime = 600 * time.Second
	codeGrace    = 6 * time.Second
	// maxTTLDays is the largest device TTL the database column holds;
	// more gives a 500 (tapis-flows.md §4.2).
	maxTTLDays = 24855
)

// Browser-page messages (tapis-flows.md §1.3, §4.3).
const (
	msgNoClientIDQuery   = "Required query parameter client_id missing."
	msgInvalidClient     = "Invalid client."
	msgNoRedirectQuery   = "Required query parameter redirect_uri missing."
	msgRedirectMismatch  = "redirect_uri query parameter does not match the registered callback_url for the client."
	msgResponseType      = "Required query parameter response_type missing or not supported."
	msgGrantNotAllowedUI = "The %s grant type is not allowed for this tenant. Allowable grant types: %s"
	msgNoSessionUser     = "username missing from session. Please login to continue."
	msgInvalidCode       = "Invalid code."
	msgCodeExpired       = "authorization code has expired."
	msgDeviceRace        = "Unrecognized exception type: <class 'AttributeError'>. Exception: 'NoneType' object has no attribute 'access_token_ttl'"
	msgTTLOutOfRange     = "Unrecognized exception type: <class 'sqlalchemy.exc.PendingRollbackError'>. Exception: (psycopg2.errors.NumericValueOutOfRange) integer out of range"
)

// browserSession is what the session cookie stands for.
type browserSession struct {
	username    string
	deviceLogin bool      // set by the device page; takes over /authorize (§0)
	issued      time.Time // when the cookie was last (re-)issued
}

// authCode is an issued authorization code, bound to its client's id and
// key (§1.2).
type authCode struct {
	clientID  string
	clientKey string
	username  string
	issued    time.Time
}

// SetBrowserUser makes the browser pages answer as if user had logged in
// and pressed every Connect button: /authorize redirects straight to the
// client's callback with a code, and a device page marks the device code
// of its client as entered by user. "" restores the real pages. It exists
// for tests and demos without a scripted browser.
func (s *Server) SetBrowserUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.browserUser = user
}

// session returns the browser session of r's cookie, or nil. An expired
// one is forgotten.
func (s *Server) session(r *http.Request) (string, *browserSession) {
	c, err := r.Cookie("session")
	if err != nil || c.Value == "" {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bs := s.sessions[c.Value]
	if bs == nil {
		return "", nil
	}
	if s.now().Sub(bs.issued) > sessionLifetime {
		delete(s.sessions, c.Value)
		return "", nil
	}
	return c.Value, bs
}

// saveSession stores bs under id (a new id when empty) and re-issues the
// cookie, which restarts its lifetime.
func (s *Server) saveSession(w http.ResponseWriter, id string, bs *browserSession) {
	s.mu.Lock()
	if id == "" {
		id = randomString(32, lettersDigits)
	}
	bs.issued = s.now()
	s.sessions[id] = bs
	s.mu.Unlock()
	w.Header().Add("Set-Cookie", "session="+id+"; HttpOnly; Path=/")
}

// logoutSession clears the browser's login, as every client-check error
// does (§0).
func (s *Server) logoutSession(w http.ResponseWriter, id string) {
	if id != "" {
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
	}
	w.Header().Add("Set-Cookie", "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/")
}

// redirect answers 302 with a Location, relative except for the final
// redirect to a client (§0).
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusFound)
	fmt.Fprintf(w, "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\"%s\">%s</a>. If not, click the link.\n",
		html.EscapeString(location), html.EscapeString(location))
}

// page answers 200 with an HTML page (no charset, as observed).
func page(w http.ResponseWriter, title, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "<!doctype html>\n<html>\n<head><title>%s</title></head>\n<body>\n<h1>%s</h1>\n%s</body>\n</html>\n",
		html.EscapeString(title), html.EscapeString(title), body)
}

// hidden renders the hidden fields the login and consent forms carry.
func hidden(fields [][2]string) string {
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "  <input type=\"hidden\" name=\"%s\" value=\"%s\">\n", f[0], html.EscapeString(f[1]))
	}
	return b.String()
}

// pyNone renders an absent parameter as Python's str(None) does.
func pyNone(v string, present bool) string {
	if !present {
		return "None"
	}
	return v
}

// clientParams are the client parameters of a browser request.
type clientParams struct {
	clientID, redirectURI, responseType, state string
	hasRedirect, hasState                      bool
}

func queryParams(q url.Values) clientParams {
	p := clientParams{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		responseType: q.Get("response_type"), state: q.Get("state")}
	_, p.hasRedirect = q["redirect_uri"]
	_, p.hasState = q["state"]
	return p
}

// checkClientParams checks the client parameters like check_client (§1.3): on
// failure it logs the browser out and answers with the JSON error.
func (s *Server) checkClientParams(w http.ResponseWriter, sid string, p clientParams) (*Client, bool) {
	failOut := func(msg string) (*Client, bool) {
		s.logoutSession(w, sid)
		fail(w, msg)
		return nil, false
	}
	if p.clientID == "" {
		return failOut(msgNoClientIDQuery)
	}
	s.mu.Lock()
	c := s.clientLocked(p.clientID)
	var cp Client
	if c != nil {
		cp = *c
	}
	s.mu.Unlock()
	if c == nil {
		return failOut(msgInvalidClient)
	}
	if !p.hasRedirect || p.redirectURI == "" || cp.CallbackURL == "" {
		return failOut(msgNoRedirectQuery)
	}
	if p.redirectURI != cp.CallbackURL {
		return failOut(msgRedirectMismatch)
	}
	if p.responseType != "code" && p.responseType != "token" && p.responseType != "device_code" {
		return failOut(msgResponseType)
	}
	return &cp, true
}

// grantAllowedUI checks that the tenant allows grant, answering the
// page's message when not.
func (s *Server) grantAllowedUI(w http.ResponseWriter, grant string) bool {
	allowed := s.allowedGrantTypes()
	if slices.Contains(allowed, grant) {
		return true
	}
	fail(w, fmt.Sprintf(msgGrantNotAllowedUI, grant, pyStrList(allowed)))
	return false
}

// grantOf is the grant type a response_type asks for.
func grantOf(responseType string) string {
	switch responseType {
	case "token":
		return "implicit"
	case "device_code":
		return "device_code"
	}
	return "authorization_code"
}

// loginQuery is the query of the redirect to the login page.
func loginQuery(p clientParams) string {
	q := "client_id=" + url.QueryEscape(p.clientID)
	if p.responseType == "device_code" {
		return q + "&response_type=device_code"
	}
	return q + "&redirect_uri=" + url.QueryEscape(p.redirectURI) + "&state=" + url.QueryEscape(pyNone(p.state, p.hasState)) +
		"&response_type=" + url.QueryEscape(p.responseType)
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	sid, bs := s.session(r)
	q := r.URL.Query()
	p := queryParams(q)
	if bs != nil && bs.deviceLogin {
		// A device login takes over /authorize: no redirect_uri check, and
		// the response type is forced (§0).
		s.deviceAuthorize(w, sid, bs, p.clientID, q.Get("user_code"))
		return
	}
	c, good := s.checkClientParams(w, sid, p)
	if !good || !s.grantAllowedUI(w, grantOf(p.responseType)) {
		return
	}
	s.mu.Lock()
	auto := s.browserUser
	s.mu.Unlock()
	if auto != "" {
		s.approve(w, c, auto, p.responseType, pyNone(p.state, p.hasState))
		return
	}
	if bs == nil || bs.username == "" {
		if bs == nil {
			bs = &browserSession{}
		}
		s.saveSession(w, sid, bs)
		redirect(w, "/v3/oauth2/login?"+loginQuery(p))
		return
	}
	s.consentPage(w, c, bs.username, p.redirectURI, pyNone(p.state, p.hasState), p.responseType, "")
}

// consentPage shows "Connect to Tapis" with its one button.
func (s *Server) consentPage(w http.ResponseWriter, c *Client, user, redirectURI, state, responseType, errMsg string) {
	body := ""
	if errMsg != "" {
		body += "<p class=\"error\">Error: " + html.EscapeString(errMsg) + "</p>\n"
	}
	body += fmt.Sprintf("<p>The %s wants to use Tapis (TACC APIs) service to grant actions on behalf of %s.</p>\n",
		html.EscapeString(c.DisplayName), html.EscapeString(user))
	body += "<form action=\"\" method=\"post\">\n" + hidden([][2]string{
		{"client_id", c.ClientID}, {"client_redirect_uri", redirectURI}, {"client_display_name", c.DisplayName},
		{"client_state", state}, {"client_response_type", responseType},
	}) + "  <button type=\"submit\" name=\"approve\" value=\"true\">Connect</button>\n</form>\n"
	page(w, "Connect to Tapis", body)
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	sid, bs := s.session(r)
	q := r.URL.Query()
	p := queryParams(q)
	if p.responseType != "device_code" {
		if _, good := s.checkClientParams(w, sid, p); !good {
			return
		}
	}
	s.mu.Lock()
	c := s.clientLocked(p.clientID)
	display := p.clientID
	if c != nil {
		display = c.DisplayName
	}
	s.mu.Unlock()
	if bs == nil {
		s.saveSession(w, sid, &browserSession{})
	}
	s.loginPage(w, display, p, "")
}

// loginPage shows the "Log In" form.
func (s *Server) loginPage(w http.ResponseWriter, display string, p clientParams, errMsg string) {
	body := ""
	if errMsg != "" {
		body += "<p class=\"error\">Error: " + html.EscapeString(errMsg) + "</p>\n"
	}
	redirectURI := pyNone(p.redirectURI, p.hasRedirect)
	state := pyNone(p.state, p.hasState)
	body += "<p>to continue to the " + html.EscapeString(display) + "</p>\n<form action=\"\" method=\"post\">\n" +
		"  <input name=\"username\"> <input name=\"password\" type=\"password\">\n" +
		hidden([][2]string{{"client_id", p.clientID}, {"client_redirect_uri", redirectURI}, {"client_display_name", display},
			{"client_state", state}, {"client_response_type", p.responseType}}) +
		"  <button type=\"submit\">Log In</button>\n</form>\n"
	page(w, "Log In", body)
}

func (s *Server) handleLoginPost(w http.ResponseWriter, r *http.Request) {
	sid, bs := s.session(r)
	if err := r.ParseForm(); err != nil {
		fail(w, msgDeserialize)
		return
	}
	f := r.PostForm
	p := clientParams{clientID: f.Get("client_id"), redirectURI: f.Get("client_redirect_uri"),
		responseType: f.Get("client_response_type"), state: f.Get("client_state"), hasRedirect: true, hasState: true}
	display := f.Get("client_display_name")
	user, pw := f.Get("username"), f.Get("password")
	s.mu.Lock()
	want, known := s.users[user]
	s.mu.Unlock()
	if !known || user == "" || !constantEqual(want, pw) {
		// The re-rendered form loses the response type (§1.1 step 4).
		p.responseType = ""
		s.loginPage(w, display, p, "Invalid username/password combination.")
		return
	}
	if p.responseType == "" {
		p.responseType = "code"
	}
	if bs == nil {
		bs = &browserSession{}
	}
	bs.username = user
	s.saveSession(w, sid, bs)
	if p.responseType == "device_code" {
		redirect(w, "/v3/oauth2/device?client_id="+url.QueryEscape(p.clientID)+"&redirect_uri=None&state=None&client_display_name="+
			url.QueryEscape(display)+"&response_type=device_code")
		return
	}
	redirect(w, "/v3/oauth2/authorize?client_id="+url.QueryEscape(p.clientID)+"&redirect_uri="+url.QueryEscape(p.redirectURI)+
		"&state="+url.QueryEscape(p.state)+"&client_display_name="+url.QueryEscape(display)+"&response_type="+url.QueryEscape(p.responseType))
}

func (s *Server) handleAuthorizePost(w http.ResponseWriter, r *http.Request) {
	sid, bs := s.session(r)
	if err := r.ParseForm(); err != nil {
		fail(w, msgDeserialize)
		return
	}
	if bs == nil || bs.username == "" {
		fail(w, msgNoSessionUser)
		return
	}
	f := r.PostForm
	// The hidden client_id is trusted; the redirect goes to that client's
	// registered callback_url whatever the form says (§0).
	s.mu.Lock()
	c := s.clientLocked(f.Get("client_id"))
	var cp Client
	if c != nil {
		cp = *c
	}
	s.mu.Unlock()
	if c == nil {
		fail(w, msgInvalidClient)
		return
	}
	rt := f.Get("client_response_type")
	if f.Get("approve") == "" {
		msg := "To proceed with authorization application " + cp.DisplayName + ", you must approve the request."
		if rt == "device_code" {
			s.devicePage(w, &cp, bs.username, f.Get("user_code"), msg)
			return
		}
		s.consentPage(w, &cp, bs.username, f.Get("client_redirect_uri"), f.Get("client_state"), rt, msg)
		return
	}
	if rt == "device_code" {
		s.approveDevicePage(w, sid, bs, f.Get("user_code"), f.Get("ttl"))
		return
	}
	s.approve(w, &cp, bs.username, rt, f.Get("client_state"))
}

// approve redirects to the client's callback with a new code, or with
// an access token for the implicit grant (§1.1 step 6, §2.1 step 4). The
// state goes back raw: only spaces are encoded.
func (s *Server) approve(w http.ResponseWriter, c *Client, user, responseType, state string) {
	state = strings.ReplaceAll(state, " ", "%20")
	if responseType == "token" {
		res, err := s.mint(mintRequest{username: user, clientID: c.ClientID, grant: "implicit"})
		if err != nil {
			crash(w, err.Error())
			return
		}
		redirect(w, fmt.Sprintf("%s?access_token=%s&state=%s&expires_in=%d&token_type=Bearer",
			c.CallbackURL, res.AccessToken.AccessToken, state, res.AccessToken.ExpiresIn))
		return
	}
	code := randomString(40, lettersDigits)
	s.mu.Lock()
	s.codes[code] = &authCode{clientID: c.ClientID, clientKey: c.ClientKey, username: user, issued: s.now()}
	s.mu.Unlock()
	redirect(w, c.CallbackURL+"?code="+code+"&state="+state)
}

// CodeCount returns how many authorization codes are issued and not yet
// exchanged, expired ones included (upstream never deletes those).
func (s *Server) CodeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.codes)
}

// codeGrant answers an authorization_code exchange: row 15 of §2.6, in
// order. Only a successful exchange burns the code (§1.2).
func (s *Server) codeGrant(w http.ResponseWriter, req *tokenRequest, client *Client) {
	switch {
	case req.RedirectURI == nil:
		fail(w, msgNoRedirect)
		return
	case *req.RedirectURI != client.CallbackURL:
		fail(w, msgBadRedirect)
		return
	case req.Code == nil:
		fail(w, msgNoCode)
		return
	}
	s.mu.Lock()
	ac := s.codes[*req.Code]
	var msg string
	switch {
	case ac == nil || ac.clientID != client.ClientID || !constantEqual(ac.clientKey, client.ClientKey):
		msg = msgCodeNotValid
	case s.now().After(ac.issued.Add(codeLifetime + codeGrace)):
		msg = msgCodeExpired
	default:
		delete(s.codes, *req.Code)
	}
	s.mu.Unlock()
	if msg != "" {
		fail(w, msg)
		return
	}
	redirectURI := *req.RedirectURI
	res, err := s.mint(mintRequest{username: ac.username, clientID: client.ClientID, grant: "authorization_code",
		withRefresh: true, redirectURI: &redirectURI})
	if err != nil {
		crash(w, err.Error())
		return
	}
	ok(w, msgCreated, res)
}

// handleDevicePage serves GET /v3/oauth2/device, the address a device
// login shows (§4.1 step 3).
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	sid, bs := s.session(r)
	id := r.URL.Query().Get("client_id")
	if id == "" {
		page(w, "Enter User Code", "<p class=\"error\">Error: Invalid URL: client_id must be passed.</p>\n")
		return
	}
	s.mu.Lock()
	auto := s.browserUser
	s.mu.Unlock()
	if auto != "" {
		s.autoEnterDevice(w, id)
		return
	}
	if bs == nil || bs.username == "" {
		if bs == nil {
			bs = &browserSession{}
		}
		bs.deviceLogin = true
		s.saveSession(w, sid, bs)
		redirect(w, "/v3/oauth2/authorize?client_id="+url.QueryEscape(id))
		return
	}
	if !bs.deviceLogin {
		bs.deviceLogin = true
		s.saveSession(w, sid, bs)
	}
	page(w, "Enter User Code", "<form action=\"\" method=\"post\">\n  <input id=\"user_code\" name=\"user_code\" required>\n"+
		hidden([][2]string{{"client_id", id}})+"  <button type=\"submit\">Submit</button>\n</form>\n")
}

// handleDevicePost takes the user code: typing it is the approval (§4.2).
func (s *Server) handleDevicePost(w http.ResponseWriter, r *http.Request) {
	_, bs := s.session(r)
	if err := r.ParseForm(); err != nil {
		fail(w, msgDeserialize)
		return
	}
	if bs == nil || bs.username == "" {
		fail(w, msgNoSessionUser)
		return
	}
	uc := r.PostForm.Get("user_code")
	s.mu.Lock()
	d := s.deviceByUserCodeLocked(uc)
	var msg string
	var display string
	switch {
	case d == nil:
		msg = msgInvalidCode
	case d.entered:
		msg = "entered"
	default:
		d.entered, d.user, d.ttl = true, bs.username, DeviceTTL
		display = d.clientID
		if c := s.clientLocked(d.clientID); c != nil {
			display = c.DisplayName
		}
	}
	s.mu.Unlock()
	switch msg {
	case msgInvalidCode:
		fail(w, msg)
	case "entered":
		page(w, "Enter User Code", "<p class=\"error\">Error: Code not eligible to be entered</p>\n")
	default:
		redirect(w, "/v3/oauth2/authorize?client_id="+url.QueryEscape(d.clientID)+"&client_display_name="+url.QueryEscape(display)+
			"&response_type=device_code&user_code="+url.QueryEscape(uc))
	}
}

// deviceAuthorize serves /authorize in a browser with a device login.
func (s *Server) deviceAuthorize(w http.ResponseWriter, sid string, bs *browserSession, clientID, userCode string) {
	s.mu.Lock()
	c := s.clientLocked(clientID)
	var cp Client
	if c != nil {
		cp = *c
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		s.logoutSession(w, sid)
		fail(w, msgInvalidClient)
	case !s.grantAllowedUI(w, "device_code"):
	case bs.username == "":
		redirect(w, "/v3/oauth2/login?client_id="+url.QueryEscape(clientID)+"&response_type=device_code")
	case userCode == "":
		redirect(w, "/v3/oauth2/device?client_id="+url.QueryEscape(clientID))
	default:
		s.devicePage(w, &cp, bs.username, userCode, "")
	}
}

// devicePage is the approval page of a device login, with the TTL field
// in days (§4.1 step 7).
func (s *Server) devicePage(w http.ResponseWriter, c *Client, user, userCode, errMsg string) {
	body := ""
	if errMsg != "" {
		body += "<p class=\"error\">Error: " + html.EscapeString(errMsg) + "</p>\n"
	}
	body += fmt.Sprintf("<p>The %s wants to use Tapis (TACC APIs) service to grant actions on behalf of %s.</p>\n",
		html.EscapeString(c.DisplayName), html.EscapeString(user))
	body += "<form action=\"\" method=\"post\">\n" +
		"  <label for=\"ttl\" hidden>By default, the authorization will last 30 days.</label>\n" +
		"  Allow this authorization for <input id=\"ttl\" name=\"ttl\" value=\"30\" size=\"3\"> days.\n" +
		hidden([][2]string{{"client_id", c.ClientID}, {"client_display_name", c.DisplayName},
			{"client_response_type", "device_code"}, {"user_code", userCode}}) +
		"  <button type=\"submit\" name=\"approve\" value=\"true\">Connect</button>\n</form>\n"
	page(w, "Connect to Tapis", body)
}

// approveDevicePage records the TTL the user chose (§4.2's table).
func (s *Server) approveDevicePage(w http.ResponseWriter, sid string, bs *browserSession, userCode, ttlField string) {
	days := 0
	if t := strings.TrimSpace(ttlField); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			page(w, "Connect to Tapis", "<p class=\"error\">Error: Please enter an integer</p>\n")
			return
		}
		days = n
	}
	if days >= maxTTLDays+1 {
		crash(w, msgTTLOutOfRange)
		return
	}
	s.mu.Lock()
	d := s.deviceByUserCodeLocked(userCode)
	if d != nil && days > 0 {
		d.ttl = time.Duration(days) * 24 * time.Hour
	}
	s.mu.Unlock()
	if d == nil {
		// The poller won already: the code is gone (§4.2).
		crash(w, msgDeviceRace)
		return
	}
	bs.deviceLogin = false
	s.saveSession(w, sid, bs)
	page(w, "Congrats!", "<p>Device Code entered successfully. Please return to your application</p>\n")
}

// autoEnterDevice plays SetBrowserUser's user on a device page: the
// oldest code of the client not yet entered is entered with the default
// TTL.
func (s *Server) autoEnterDevice(w http.ResponseWriter, clientID string) {
	s.mu.Lock()
	var oldest *device
	for _, d := range s.devices {
		if d.clientID == clientID && !d.entered && (oldest == nil || d.issued.Before(oldest.issued)) {
			oldest = d
		}
	}
	if oldest != nil {
		oldest.entered, oldest.user, oldest.ttl = true, s.browserUser, DeviceTTL
	}
	s.mu.Unlock()
	if oldest == nil {
		fail(w, msgInvalidCode)
		return
	}
	page(w, "Congrats!", "<p>Device Code entered successfully. Please return to your application</p>\n")
}
