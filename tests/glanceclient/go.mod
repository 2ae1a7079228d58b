module taskop/tests/glanceclient

// The real gophercloud client, at the release the Glance door is checked against. Its tasks
// package (openstack/image/v2/tasks) and pager (pagination) are what the checks exercise; see
// README.md. Build: CGO_ENABLED=0 go build -o /tmp/glanceclient .

go 1.26

require github.com/gophercloud/gophercloud/v2 v2.16.0
