package tapistest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// A password grant against the fake, with the client credentials that
// make it issue a refresh token.
func ExampleServer() {
	s, err := tapistest.NewServer(tapistest.Config{TenantID: "demo", Users: map[string]string{"jdoe": "secret"}}, nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.AddClient("jdoe", "myclient", "mykey"); err != nil {
		panic(err)
	}

	req, _ := http.NewRequest("POST", s.URL()+"/v3/oauth2/tokens",
		strings.NewReader(`{"grant_type":"password","username":"jdoe","password":"secret"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("myclient", "mykey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var env struct {
		Message string `json:"message"`
		Result  struct {
			AccessToken struct {
				ExpiresIn int `json:"expires_in"`
			} `json:"access_token"`
			RefreshToken struct {
				ExpiresIn int `json:"expires_in"`
			} `json:"refresh_token"`
		} `json:"result"`
	}
	json.NewDecoder(resp.Body).Decode(&env)
	fmt.Println(resp.StatusCode, env.Message, env.Result.AccessToken.ExpiresIn, env.Result.RefreshToken.ExpiresIn)
	// Output: 200 Token created successfully. 14400 31536000
}
