package tapistest

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Token-endpoint messages (§2.6).
const (
	msgNoContentType   = "Unrecognized exception type: <class 'AttributeError'>. Exception: 'NoneType' object has no attribute 'startswith'"
	msgCreated         = "Token created successfully."
	msgNoGrant         = "Missing the required grant_type parameter."
	msgNoClientID      = "Required client_id parameter missing."
	msgNoDeviceCode    = "Required device_code parameter missing."
	msgDeviceNotValid  = "device code not valid."
	msgDeviceNotReady  = "device code not ready."
	msgDeviceExpired   = "device code has expired and is now deleted."
	msgDeviceMismatch  = "Client IDs do not match between device code and passed in client_id"
	msgNoUserPass      = "Missing required payload data; username and password are required for the password grant type."
	msgBadUserPass     = "Invalid username/password combination."
	msgNoRedirect      = "Required redirect_uri parameter missing."
	msgBadRedirect     = "Invalid redirect_uri parameter: does not match callback URL registered with client."
	msgNoCode          = "Required authorization_code parameter missing."
	msgCodeNotValid    = "authorization code not valid."
	msgNoRefresh       = "Required refresh_token parameter missing."
	msgBadRefresh      = "Invalid refresh_token."
	msgNoAccessClaim   = "Invalid refresh_token format; this token was missing the access_token claim."
	msgNoRefreshCount  = "Unrecognized exception type: <class 'TypeError'>. Exception: unsupported operand type(s) for +: 'NoneType' and 'int'"
	msgInvalidGrant    = "Invalid grant_type"
	msgGrantNotAllowed = "Invalid grant_type (%s); this grant type is not allowed for this tenant. Allowable grant types: %s"
	msgMediaNotFound   = "Invalid POST data: [MediaTypeNotFound('Content for the following mimetype not found: %s. Valid mimetypes: [application/json, application/x-www-form-urlencoded]')]."
	msgDeserialize     = "Invalid POST data: [MediaTypeDeserializeError('Failed to deserialize request body')]."
	msgMissingBody     = "Invalid POST data: [MissingRequiredRequestBody('Missing required request body')]."
	msgInvalidSchema   = "Invalid POST data: [InvalidSchemaValue('Value %s not valid for schema of type %s')]."
	msgBadClientFormat = "Invalid client credentials: %s, %s. session: <SecureCookieSession {}>"
)

// tokenRequest holds the fields of a token request. A field is nil when
// absent.
type tokenRequest struct {
	GrantType    *string
	Username     *string
	Password     *string
	RedirectURI  *string
	Code         *string
	RefreshToken *string
	ClientID     *string // JSON only
	DeviceCode   *string // JSON only
}

// set stores val as the field named name, if the request has one.
func (t *tokenRequest) set(name, val string) {
	fields := map[string]**string{"grant_type": &t.GrantType, "username": &t.Username, "password": &t.Password,
		"redirect_uri": &t.RedirectURI, "code": &t.Code, "refresh_token": &t.RefreshToken,
		"client_id": &t.ClientID, "device_code": &t.DeviceCode}
	if f, ok := fields[name]; ok {
		*f = &val
	}
}

// formFields are the only fields 1.6.0 reads from a form body.
var formFields = []string{"grant_type", "username", "password", "redirect_uri", "code", "refresh_token"}

// decodeJSONObject decodes a body against a schema whose properties are
// all optional strings, answering the §2.6 row 2 messages.
func decodeJSONObject(body []byte) (map[string]string, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, msgMissingBody
	}
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, msgDeserialize
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Sprintf(msgInvalidSchema, pyRepr(raw), "object")
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Sprintf(msgInvalidSchema, pyRepr(v), "string")
		}
		out[k] = s
	}
	return out, ""
}

// readJSONObject reads a POST body as decodeJSONObject does. On failure
// it answers with upstream's message and returns false.
func readJSONObject(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	body, err := readBody(r)
	if err != nil {
		fail(w, msgDeserialize)
		return nil, false
	}
	fields, msg := decodeJSONObject(body)
	if msg != "" {
		fail(w, msg)
		return nil, false
	}
	return fields, true
}

// pyRepr renders a decoded JSON value roughly like Python's repr, for the
// validator messages (which clients match by prefix only).
func pyRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return "'" + v + "'"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// pyStrList renders a list of strings as Python's repr does, for the
// "not allowed" grant type message: ['a', 'b'], or [] when empty.
func pyStrList(items []string) string {
	if len(items) == 0 {
		return "[]"
	}
	return "['" + strings.Join(items, "', '") + "']"
}

// parseTokenRequest decodes the body by content type; the second result
// is the error answer, if any (status, message).
func parseTokenRequest(r *http.Request) (*tokenRequest, int, string) {
	ctype := r.Header.Get("Content-Type")
	if _, present := r.Header["Content-Type"]; !present {
		return nil, http.StatusInternalServerError, msgNoContentType
	}
	body, err := readBody(r)
	if err != nil {
		return nil, http.StatusBadRequest, msgDeserialize
	}
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = ctype
	}
	req := new(tokenRequest)
	switch strings.ToLower(mt) {
	case "application/json":
		obj, msg := decodeJSONObject(body)
		if msg != "" {
			return nil, http.StatusBadRequest, msg
		}
		for k, v := range obj {
			req.set(k, v)
		}
	case "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, http.StatusBadRequest, msgDeserialize
		}
		for _, k := range formFields {
			if vs, ok := q[k]; ok && len(vs) > 0 {
				req.set(k, vs[0])
			}
		}
	default:
		return nil, http.StatusBadRequest, fmt.Sprintf(msgMediaNotFound, ctype)
	}
	return req, 0, ""
}

// basicAuth returns the client credentials of a well-formed Basic header.
// Anything else (Bearer, bad base64, no colon) is "no client" (§2.3).
func basicAuth(r *http.Request) (id, key string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(dec), ":")
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	// An X-Tapis-Token header is ignored here, garbage or expired (§2.1).
	req, status, msg := parseTokenRequest(r)
	if msg != "" {
		writeEnvelope(w, status, envelope{Message: msg, Status: "error"})
		return
	}
	gt := str(req.GrantType)
	if gt == "" {
		fail(w, msgNoGrant)
		return
	}
	if allowed := s.allowedGrantTypes(); !slices.Contains(allowed, gt) {
		fail(w, fmt.Sprintf(msgGrantNotAllowed, gt, pyStrList(allowed)))
		return
	}
	if gt == "device_code" {
		s.deviceGrant(w, req)
		return
	}

	// Client check (row 11). Only a well-formed Basic header names a client.
	var client *Client
	id, key, hasBasic := basicAuth(r)
	if hasBasic {
		client = s.checkClient(id, key)
		if client == nil {
			fail(w, fmt.Sprintf(msgBadClientFormat, id, key))
			return
		}
	} else if gt == "refresh_token" || gt == "authorization_code" {
		fail(w, fmt.Sprintf(msgBadClientFormat, "None", "None"))
		return
	}

	switch gt {
	case "password":
		s.passwordGrant(w, req, client)
	case "refresh_token":
		s.refreshGrant(w, req, client)
	case "authorization_code":
		s.codeGrant(w, req, client)
	default: // implicit
		fail(w, msgInvalidGrant)
	}
}

// checkClient returns a copy of the client with these credentials, or nil.
// The active flag is not checked (§2.3).
func (s *Server) checkClient(id, key string) *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientLocked(id)
	if c == nil || !constantEqual(c.ClientKey, key) {
		return nil
	}
	cp := *c
	return &cp
}

func (s *Server) passwordGrant(w http.ResponseWriter, req *tokenRequest, client *Client) {
	if req.Username == nil || req.Password == nil || *req.Username == "" || *req.Password == "" {
		fail(w, msgNoUserPass)
		return
	}
	s.mu.Lock()
	want, known := s.users[*req.Username]
	s.mu.Unlock()
	// Compare even for unknown users so both cases cost the same.
	match := constantEqual(want, *req.Password)
	if !known || !match {
		fail(w, msgBadUserPass)
		return
	}
	clientID := ""
	if client != nil {
		clientID = client.ClientID
	}
	res, err := s.mint(mintRequest{username: *req.Username, clientID: clientID, grant: "password", withRefresh: client != nil})
	if err != nil {
		crash(w, err.Error())
		return
	}
	ok(w, msgCreated, res)
}

func (s *Server) refreshGrant(w http.ResponseWriter, req *tokenRequest, client *Client) {
	if req.RefreshToken == nil {
		fail(w, msgNoRefresh)
		return
	}
	p, err := parseJWT(*req.RefreshToken)
	if err != nil || !p.verify(&s.signingKey().priv.PublicKey, s.now()) {
		fail(w, msgBadRefresh)
		return
	}
	if tt, _ := p.claims["tapis/token_type"].(string); tt != "refresh" {
		fail(w, fmt.Sprintf("Invalid token type. The refresh_token grant type required a token of type refresh. Instead a token of type %s was passed.", pyStr(p.claims["tapis/token_type"])))
		return
	}
	inner, ok2 := p.claims["tapis/access_token"].(map[string]any)
	if !ok2 {
		fail(w, msgNoAccessClaim)
		return
	}
	claimClient := pyStr(inner["tapis/client_id"])
	if claimClient != client.ClientID {
		fail(w, fmt.Sprintf("client_id from header (%s) does not match the client_id in the token claim (%s).", client.ClientID, claimClient))
		return
	}
	count, ok2 := numberClaim(inner["tapis/refresh_count"])
	if !ok2 {
		crash(w, msgNoRefreshCount)
		return
	}
	jti, _ := p.claims["jti"].(string)
	s.mu.Lock()
	if s.singleUse {
		if s.usedRefresh[jti] {
			s.mu.Unlock()
			fail(w, msgBadRefresh)
			return
		}
		s.usedRefresh[jti] = true
	}
	s.mu.Unlock()
	username, _ := inner["tapis/username"].(string)
	mr := mintRequest{username: username, clientID: client.ClientID, grant: "refresh_token", withRefresh: true, refreshCount: count + 1}
	if _, has := inner["tapis/redirect_uri"]; has {
		// The new token gets the client's current callback_url (§3).
		cb := client.CallbackURL
		mr.redirectURI = &cb
	}
	res, err := s.mint(mr)
	if err != nil {
		crash(w, err.Error())
		return
	}
	ok(w, msgCreated, res)
}

// constantEqual compares secrets in constant time.
func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// pyStr renders a claim value as Python's str() would in a message.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	}
	return pyRepr(v)
}

// Token result objects, fields in key order (§2.5).
type accessTokenObj struct {
	AccessToken string `json:"access_token"`
	ExpiresAt   string `json:"expires_at"`
	ExpiresIn   int64  `json:"expires_in"`
	JTI         string `json:"jti"`
}

type refreshTokenObj struct {
	ExpiresAt    string `json:"expires_at"`
	ExpiresIn    int64  `json:"expires_in"`
	JTI          string `json:"jti"`
	RefreshToken string `json:"refresh_token"`
}

type tokenResult struct {
	AccessToken  accessTokenObj   `json:"access_token"`
	RefreshToken *refreshTokenObj `json:"refresh_token,omitempty"`
}

// mintRequest describes a token pair to issue.
type mintRequest struct {
	username     string
	clientID     string // "" → null
	grant        string
	withRefresh  bool
	refreshCount int64
	accessTTL    time.Duration // 0 → the tenant's current TTL
	redirectURI  *string
}

// mint issues an access token and, if asked, its refresh token, with the
// claim sets of §5.2 and §5.3.
func (s *Server) mint(m mintRequest) (*tokenResult, error) {
	s.mu.Lock()
	now := s.now()
	accessTTL, refreshTTL := s.accessTTL, s.refreshTTL
	key := s.key
	s.mu.Unlock()
	if m.accessTTL > 0 {
		accessTTL = m.accessTTL
	}
	iss := s.url + "/v3/tokens"
	sub := m.username + "@" + s.tenant
	accessJTI := newUUID()
	accessExp := now.Add(accessTTL)
	var clientID any
	if m.clientID != "" {
		clientID = m.clientID
	}
	// Claims common to the access token and its copy inside the refresh
	// token (which drops exp and adds ttl).
	head := claims{
		{"jti", accessJTI},
		{"iss", iss},
		{"sub", sub},
		{"tapis/tenant_id", s.tenant},
		{"tapis/token_type", "access"},
		{"tapis/delegation", false},
		{"tapis/delegation_sub", nil},
		{"tapis/username", m.username},
		{"tapis/account_type", "user"},
	}
	tail := claims{
		{"tapis/client_id", clientID},
		{"tapis/grant_type", m.grant},
	}
	if m.withRefresh {
		tail = append(tail, claim{"tapis/refresh_count", m.refreshCount})
	}
	if m.redirectURI != nil {
		tail = append(tail, claim{"tapis/redirect_uri", *m.redirectURI})
	}
	access := append(append(append(claims{}, head...), claim{"exp", accessExp.Unix()}), tail...)
	at, err := sign(key.priv, access)
	if err != nil {
		return nil, err
	}
	res := &tokenResult{AccessToken: accessTokenObj{
		AccessToken: at,
		ExpiresAt:   pyISO(accessExp),
		ExpiresIn:   int64(accessTTL / time.Second),
		JTI:         accessJTI,
	}}
	if !m.withRefresh {
		return res, nil
	}
	inner := append(append(append(claims{}, head...), tail...), claim{"ttl", int64(accessTTL / time.Second)})
	refreshJTI := newUUID()
	refreshExp := now.Add(refreshTTL)
	refresh := claims{
		{"jti", refreshJTI},
		{"iss", iss},
		{"sub", sub},
		{"tapis/tenant_id", s.tenant},
		{"tapis/token_type", "refresh"},
		{"tapis/initial_ttl", int64(refreshTTL / time.Second)},
		{"tapis/access_token", inner},
		{"exp", refreshExp.Unix()},
	}
	rt, err := sign(key.priv, refresh)
	if err != nil {
		return nil, err
	}
	res.RefreshToken = &refreshTokenObj{
		ExpiresAt:    pyISO(refreshExp),
		ExpiresIn:    int64(refreshTTL / time.Second),
		JTI:          refreshJTI,
		RefreshToken: rt,
	}
	return res, nil
}

// IssueTokens mints a password-grant token pair for username directly,
// without a request: an access token only when clientID is "" (refresh is
// then ""), else access and refresh tokens bound to clientID. The client
// need not exist; register it with AddClient to refresh the pair.
func (s *Server) IssueTokens(username string, clientID string) (access, refresh string) {
	res, err := s.mint(mintRequest{username: username, clientID: clientID, grant: "password", withRefresh: clientID != ""})
	if err != nil {
		panic(fmt.Sprintf("tapistest: %v", err))
	}
	if res.RefreshToken != nil {
		refresh = res.RefreshToken.RefreshToken
	}
	return res.AccessToken.AccessToken, refresh
}

// SignClaims signs arbitrary claims with the tenant's key, keys in sorted
// order, to build expired, malformed or foreign tokens in tests.
func (s *Server) SignClaims(c map[string]any) string {
	tok, err := sign(s.signingKey().priv, mapClaims(c))
	if err != nil {
		panic(fmt.Sprintf("tapistest: %v", err))
	}
	return tok
}

// Token-validation messages (§7.2).
const (
	msgNoToken       = "No Tapis access token found in the request."
	msgParseToken    = "Could not parse the Tapis access token."
	msgNoTenantClaim = "Unable to process Tapis token; could not parse the tenant_id. It is possible the token is in a format no longer supported by the platform."
	msgUnknownTenant = "Unable to process Tapis token; unexpected tenant_id."
	msgInvalidToken  = "Invalid Tapis token."
)

// validateToken checks tok like the Python services' auth layer and
// returns its claims, or the §7.2 message.
func (s *Server) validateToken(tok string) (map[string]any, string) {
	if tok == "" {
		return nil, msgNoToken
	}
	p, err := parseJWT(tok)
	if err != nil {
		return nil, msgParseToken
	}
	tenant, _ := p.claims["tapis/tenant_id"].(string)
	if tenant == "" {
		return nil, msgNoTenantClaim
	}
	pub := &s.signingKey().priv.PublicKey
	if tenant != s.tenant {
		// Another fake tenant of this process plays a tenant the site
		// knows; anything else is unknown.
		if pub = knownKey(tenant); pub == nil {
			return nil, msgUnknownTenant
		}
	}
	if !p.verify(pub, s.now()) {
		return nil, msgInvalidToken
	}
	if tenant != s.tenant {
		return nil, fmt.Sprintf("The tenant_id claim in the token, %s does not match the URL tenant, %s.", tenant, s.tenant)
	}
	return p.claims, ""
}

// requestToken validates the request's X-Tapis-Token (never Authorization:
// Bearer, §7.1).
func (s *Server) requestToken(r *http.Request) (map[string]any, string) {
	return s.validateToken(r.Header.Get("X-Tapis-Token"))
}
