package tapistest

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Client is an OAuth client registered with the fake tenant, in the JSON
// shape of the clients API (§4). Timestamps are RFC 1123 ("Sun, 22 Nov 2026
// 14:11:19 GMT").
type Client struct {
	Active         bool   `json:"active"`
	CallbackURL    string `json:"callback_url"`
	ClientID       string `json:"client_id"`
	ClientKey      string `json:"client_key"`
	CreateTime     string `json:"create_time"`
	Description    string `json:"description"`
	DisplayName    string `json:"display_name"`
	LastUpdateTime string `json:"last_update_time"`
	Owner          string `json:"owner"`
	TenantID       string `json:"tenant_id"`
}

// Clients-API messages (§4).
const (
	msgAuthorizationHeader = "Invalid call to get_tenant_config; either tenant_id or url must be passed."
	msgNotAuthorized       = "Not authorized for this client."
)

// Clients returns copies of all registered clients, inactive ones
// included, in creation order.
func (s *Server) Clients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Client, len(s.clients))
	for i, c := range s.clients {
		out[i] = *c
	}
	return out
}

// AddClient registers an active client owned by owner, as if owner had
// created it. It returns an error if the id is taken.
func (s *Server) AddClient(owner, clientID, clientKey string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, msg := s.createClientLocked(owner, map[string]string{"client_id": clientID, "client_key": clientKey})
	if msg != "" {
		return fmt.Errorf("adding client: %s", msg)
	}
	return nil
}

// clientLocked returns the client with this id, or nil. Ids are unique
// across the whole fake (the real constraint spans all tenants; this fake
// serves one).
func (s *Server) clientLocked(id string) *Client {
	for _, c := range s.clients {
		if c.ClientID == id {
			return c
		}
	}
	return nil
}

// clientsAuth runs the checks every clients call starts with and returns
// the caller's username; "" means an answer was written.
func (s *Server) clientsAuth(w http.ResponseWriter, r *http.Request) string {
	if _, has := r.Header["Authorization"]; has {
		fail(w, msgAuthorizationHeader)
		return ""
	}
	claims, msg := s.requestToken(r)
	if msg != "" {
		fail(w, msg)
		return ""
	}
	u, _ := claims["tapis/username"].(string)
	if u == "" {
		fail(w, msgInvalidToken)
		return ""
	}
	return u
}

func (s *Server) handleListClients(w http.ResponseWriter, r *http.Request) {
	user := s.clientsAuth(w, r)
	if user == "" {
		return
	}
	showInactive := r.URL.Query().Get("show_inactive") != ""
	s.mu.Lock()
	out := []Client{}
	for _, c := range s.clients {
		if c.Owner == user && (c.Active || showInactive) {
			out = append(out, *c)
		}
	}
	s.mu.Unlock()
	ok(w, "Clients retrieved successfully.", out)
}

// Column limits of the clients table.
var clientLimits = map[string]int{"client_id": 80, "client_key": 80, "callback_url": 200, "display_name": 50, "description": 70}

func (s *Server) handleCreateClient(w http.ResponseWriter, r *http.Request) {
	user := s.clientsAuth(w, r)
	if user == "" {
		return
	}
	fields, good := readJSONObject(w, r)
	if !good {
		return
	}
	for k, max := range clientLimits {
		if v, has := fields[k]; has && utf8.RuneCountInString(v) > max {
			fail(w, fmt.Sprintf("Invalid POST data: [InvalidSchemaValue('Value %s not valid for schema of type string: maxLength %d')].", pyRepr(v), max))
			return
		}
	}
	s.mu.Lock()
	c, msg := s.createClientLocked(user, fields)
	s.mu.Unlock()
	if msg != "" {
		fail(w, msg)
		return
	}
	ok(w, "Client created successfully.", c)
}

// createClientLocked registers a client from request fields and returns
// a copy, or the error message.
func (s *Server) createClientLocked(owner string, f map[string]string) (Client, string) {
	id, key := f["client_id"], f["client_key"]
	if id == "" {
		for id == "" || s.clientLocked(id) != nil {
			id = randomString(13, lettersDigits)
		}
	}
	if key == "" {
		key = randomString(13, lettersDigits)
	}
	if s.clientLocked(id) != nil {
		return Client{}, fmt.Sprintf("Invalid POST data; This change would violate uniqueness constraints. Details: Key (client_id)=(%s) already exists.", id)
	}
	display := f["display_name"]
	if display == "" {
		display = truncate(id, 50)
	}
	now := s.now().UTC().Format(http.TimeFormat)
	c := &Client{
		Active:         true,
		CallbackURL:    f["callback_url"],
		ClientID:       id,
		ClientKey:      key,
		CreateTime:     now,
		Description:    f["description"],
		DisplayName:    display,
		LastUpdateTime: now,
		Owner:          owner,
		TenantID:       s.tenant,
	}
	s.clients = append(s.clients, c)
	return *c, ""
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ownedClientLocked finds id for user; on failure it returns the message.
func (s *Server) ownedClientLocked(id, user string) (*Client, string) {
	c := s.clientLocked(id)
	if c == nil || c.TenantID != s.tenant {
		return nil, fmt.Sprintf("No client found with id %s.", id)
	}
	if c.Owner != user {
		return nil, msgNotAuthorized
	}
	return c, ""
}

func (s *Server) handleGetClient(w http.ResponseWriter, r *http.Request, id string) {
	s.answerOwnedClient(w, r, id, "Client object retrieved successfully.", nil)
}

// answerOwnedClient finds the client id of the caller, applies change to
// it (nil: none) under the lock and answers with it, or with why not.
func (s *Server) answerOwnedClient(w http.ResponseWriter, r *http.Request, id, success string, change func(*Client)) {
	user := s.clientsAuth(w, r)
	if user == "" {
		return
	}
	s.mu.Lock()
	c, msg := s.ownedClientLocked(id, user)
	var cp Client
	if c != nil {
		if change != nil {
			change(c)
		}
		cp = *c
	}
	s.mu.Unlock()
	if msg != "" {
		fail(w, msg)
		return
	}
	ok(w, success, cp)
}

func (s *Server) handleUpdateClient(w http.ResponseWriter, r *http.Request, id string) {
	user := s.clientsAuth(w, r)
	if user == "" {
		return
	}
	body, err := readBody(r)
	if err != nil {
		fail(w, "Invalid PUT data: [MediaTypeDeserializeError('Failed to deserialize request body')]")
		return
	}
	fields, msg := decodeJSONObject(body)
	if msg != "" {
		fail(w, strings.TrimSuffix(strings.Replace(msg, "POST", "PUT", 1), "."))
		return
	}
	for _, k := range []string{"client_id", "client_key", "description"} {
		if _, has := fields[k]; has {
			fail(w, fmt.Sprintf("Changing %s not currently supported.", k))
			return
		}
	}
	s.mu.Lock()
	cp, msg := s.updateClientLocked(id, user, fields)
	s.mu.Unlock()
	if msg != "" {
		fail(w, msg)
		return
	}
	ok(w, "Client updated successfully", cp)
}

// updateClientLocked applies a PUT and returns the updated client or the
// error message.
func (s *Server) updateClientLocked(id, user string, fields map[string]string) (Client, string) {
	c, msg := s.ownedClientLocked(id, user)
	if msg != "" {
		return Client{}, msg
	}
	for k, max := range clientLimits {
		if v, has := fields[k]; has && utf8.RuneCountInString(v) > max {
			return Client{}, fmt.Sprintf("Invalid PUT data: [InvalidSchemaValue('Value %s not valid for schema of type string: maxLength %d')]", pyRepr(v), max)
		}
	}
	if v, has := fields["callback_url"]; has {
		c.CallbackURL = v
	}
	if v, has := fields["display_name"]; has {
		c.DisplayName = v
	}
	c.LastUpdateTime = s.now().UTC().Format(http.TimeFormat)
	return *c, ""
}

func (s *Server) handleDeleteClient(w http.ResponseWriter, r *http.Request, id string) {
	s.answerOwnedClient(w, r, id, "Client status updated to inactive successfully", func(c *Client) {
		// Soft delete: the client keeps working for token requests (§2.3).
		c.Active = false
		c.LastUpdateTime = s.now().UTC().Format(http.TimeFormat)
	})
}

// SetClientCallback changes the callback_url of client id, as its owner
// can with PUT /v3/oauth2/clients/{id}.
func (s *Server) SetClientCallback(id, callbackURL string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clientLocked(id)
	if c == nil {
		return fmt.Errorf("setting the callback: no client %s", id)
	}
	c.CallbackURL = callbackURL
	return nil
}
