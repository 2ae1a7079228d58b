module taskop/tests/bbsconformance

// Pins: code.cloudfoundry.org/bbs must equal BBS_CLIENT_VERSION in hack/versions.env
// (hack/build-bbs-tools refuses to build otherwise). The bbs module has no go.mod of its own
// (the proxy synthesizes "module code.cloudfoundry.org/bbs"), so its dependencies are pinned here
// by hand, each at a version whose .mod and .zip the module proxy serves. `go mod tidy` does not
// work for this module (it wants bbs's test-only dependencies, e.g. code.cloudfoundry.org/locket,
// whose version list the proxy refuses); edit this file and run `go build -mod=mod` instead.

go 1.26

require (
	code.cloudfoundry.org/bbs v0.0.0-20260507155651-045cbe358842
	code.cloudfoundry.org/cfhttp/v2 v2.87.0
	code.cloudfoundry.org/lager/v3 v3.74.0
	code.cloudfoundry.org/tlsconfig v0.17.0
	github.com/gogo/protobuf v1.3.2
	github.com/openzipkin/zipkin-go v0.4.3
	github.com/tedsuo/rata v1.0.0
	github.com/vito/go-sse v1.1.3
)

require github.com/bmizerany/pat v0.0.0-20170815010413-6226ea591a40 // indirect
