package main

import (
	"fmt"
	"slices"
	"time"

	"code.cloudfoundry.org/bbs/models"
)

// runDomains checks UpsertDomain and Domains as Cloud Controller uses them: it upserts its domain
// with a TTL after every sync and reads the fresh ones.
func runDomains(s *session) {
	c, l := s.client, s.logger
	kept := s.guid("domain")
	brief := s.guid("brief")

	s.runSteps([]step{
		{"upsert-domain", func() (string, error) {
			return kept + " for 120s", wantOK(c.UpsertDomain(l, "", kept, 120*time.Second))
		}},
		{"domains-lists-it", func() (string, error) {
			domains, err := c.Domains(l, "")
			if err != nil {
				return "", err
			}
			if !slices.Contains(domains, kept) {
				return "", fmt.Errorf("Domains() = %v, want it to contain %s", domains, kept)
			}
			return fmt.Sprintf("%d fresh domains, %s among them", len(domains), kept), nil
		}},
		{"upsert-empty-domain-invalid", func() (string, error) {
			err := c.UpsertDomain(l, "", "", 120*time.Second)
			return "InvalidRequest", wantBBSError(err, models.Error_InvalidRequest, "Invalid field: domain")
		}},
		{"a-domain-expires-after-its-ttl", func() (string, error) {
			if err := c.UpsertDomain(l, "", brief, time.Second); err != nil {
				return "", err
			}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				domains, err := c.Domains(l, "")
				if err != nil {
					return "", err
				}
				if !slices.Contains(domains, brief) {
					if !slices.Contains(domains, kept) {
						return "", fmt.Errorf("%s expired too, after less than its 120s", kept)
					}
					return brief + " gone after its 1s ttl; " + kept + " still fresh", nil
				}
				time.Sleep(250 * time.Millisecond)
			}
			return "", fmt.Errorf("%s still listed 10s after its 1s ttl", brief)
		}},
	})
}
