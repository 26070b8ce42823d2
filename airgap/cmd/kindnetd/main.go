// Command kindnetd is a small stand-in for kind's default CNI daemon, written for the offline e2e
// build because kind's own kindnetd source is not served by the Go module proxy.
//
// It runs as kind's `kindnet` DaemonSet (host network, NET_ADMIN) with the environment kind's
// manifest gives it (HOST_IP, POD_SUBNET, CONTROL_PLANE_ENDPOINT) and, every few seconds:
//   - reads the nodes from the API server (service-account token, standard library HTTP client);
//   - writes /etc/cni/net.d/10-kindnet.conflist for its own node: ptp + host-local over the node's
//     pod CIDRs, then portmap (the plugins kind's node image ships);
//   - routes every other node's pod CIDRs via that node's InternalIP (`ip route replace`);
//   - masquerades traffic from the pod subnet to anything outside it (iptables nat table).
//
// IPv4 and IPv6 CIDRs are both handled; network policies and NRI are not implemented.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	saDir       = "/var/run/secrets/kubernetes.io/serviceaccount"
	cniConfDir  = "/etc/cni/net.d"
	cniConfName = "10-kindnet.conflist"
	masqChain   = "KINDNET-MASQ"
	resync      = 10 * time.Second
)

type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

func (n node) podCIDRs() []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func (n node) internalIPs() []net.IP {
	var ips []net.IP
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			if ip := net.ParseIP(a.Address); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

type apiClient struct {
	base   string
	client *http.Client
}

func newAPIClient() (*apiClient, error) {
	endpoint := os.Getenv("CONTROL_PLANE_ENDPOINT")
	if endpoint == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, fmt.Errorf("neither CONTROL_PLANE_ENDPOINT nor KUBERNETES_SERVICE_HOST/PORT is set")
		}
		endpoint = net.JoinHostPort(host, port)
	}
	caPEM, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificates in %s/ca.crt", saDir)
	}
	return &apiClient{
		base: "https://" + endpoint,
		client: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

func (c *apiClient) nodes(ctx context.Context) ([]node, error) {
	// The projected token is rotated by kubelet: read it for every request.
	token, err := os.ReadFile(filepath.Join(saDir, "token"))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return nil, fmt.Errorf("GET /api/v1/nodes: %s: %s", resp.Status, strings.TrimSpace(body.String()))
	}
	var list struct {
		Items []node `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

type daemon struct {
	api        *apiClient
	hostIP     net.IP
	podSubnets []*net.IPNet
	mtu        int
	routes     map[string]string // pod CIDR -> gateway already installed
	conf       []byte            // CNI config already written
	masqDone   bool
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	hostIP := net.ParseIP(os.Getenv("HOST_IP"))
	if hostIP == nil {
		log.Fatalf("HOST_IP %q is not an IP address", os.Getenv("HOST_IP"))
	}
	var subnets []*net.IPNet
	for _, s := range strings.Split(os.Getenv("POD_SUBNET"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			log.Fatalf("POD_SUBNET: %v", err)
		}
		subnets = append(subnets, n)
	}
	if len(subnets) == 0 {
		log.Fatal("POD_SUBNET is empty")
	}
	api, err := newAPIClient()
	if err != nil {
		log.Fatal(err)
	}
	d := &daemon{api: api, hostIP: hostIP, podSubnets: subnets, mtu: mtuOf(hostIP), routes: map[string]string{}}
	log.Printf("kindnetd stand-in: host %s, pod subnets %v, mtu %d, API %s", hostIP, subnets, d.mtu, api.base)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		if err := d.sync(ctx); err != nil {
			log.Printf("sync: %v", err)
		}
		select {
		case <-ctx.Done():
			log.Print("stopping")
			return
		case <-ticker.C:
		}
	}
}

func (d *daemon) sync(ctx context.Context) error {
	if !d.masqDone {
		if err := d.ensureMasquerade(); err != nil {
			log.Printf("masquerade rules: %v", err)
		} else {
			d.masqDone = true
		}
	}
	nodes, err := d.api.nodes(ctx)
	if err != nil {
		return err
	}
	var errs []string
	for _, n := range nodes {
		self := false
		for _, ip := range n.internalIPs() {
			if ip.Equal(d.hostIP) {
				self = true
			}
		}
		if self {
			if err := d.writeCNIConfig(n); err != nil {
				errs = append(errs, err.Error())
			}
			continue
		}
		for _, cidr := range n.podCIDRs() {
			if err := d.ensureRoute(n, cidr); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (d *daemon) writeCNIConfig(n node) error {
	cidrs := n.podCIDRs()
	if len(cidrs) == 0 {
		return fmt.Errorf("node %s has no pod CIDR yet", n.Metadata.Name)
	}
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, c := range cidrs {
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			return fmt.Errorf("node %s pod CIDR %q: %v", n.Metadata.Name, c, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": c}})
		if ip.To4() != nil {
			routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
		} else {
			routes = append(routes, map[string]string{"dst": "::/0"})
		}
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kindnet",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false, // masquerading is done once, for the whole pod subnet, by ensureMasquerade
				"mtu":    d.mtu,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": "/run/cni-ipam-state",
					"routes":  routes,
					"ranges":  ranges,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if bytes.Equal(data, d.conf) {
		return nil
	}
	tmp := filepath.Join(cniConfDir, "."+cniConfName+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(cniConfDir, cniConfName)); err != nil {
		return err
	}
	d.conf = data
	log.Printf("wrote %s/%s for pod CIDRs %v", cniConfDir, cniConfName, cidrs)
	return nil
}

func (d *daemon) ensureRoute(n node, cidr string) error {
	_, dst, err := net.ParseCIDR(cidr)
	if err != nil {
		return fmt.Errorf("node %s pod CIDR %q: %v", n.Metadata.Name, cidr, err)
	}
	var gw net.IP
	for _, ip := range n.internalIPs() {
		if (ip.To4() != nil) == (dst.IP.To4() != nil) {
			gw = ip
			break
		}
	}
	if gw == nil {
		return fmt.Errorf("node %s has no InternalIP of the family of %s", n.Metadata.Name, cidr)
	}
	if d.routes[dst.String()] == gw.String() {
		return nil
	}
	family := "-4"
	if dst.IP.To4() == nil {
		family = "-6"
	}
	if out, err := exec.Command("ip", family, "route", "replace", dst.String(), "via", gw.String()).CombinedOutput(); err != nil {
		return fmt.Errorf("ip route replace %s via %s: %v: %s", dst, gw, err, strings.TrimSpace(string(out)))
	}
	d.routes[dst.String()] = gw.String()
	log.Printf("route %s via %s (node %s)", dst, gw, n.Metadata.Name)
	return nil
}

// ensureMasquerade (re)builds a nat chain that masquerades pod traffic leaving the pod subnet.
func (d *daemon) ensureMasquerade() error {
	for _, subnet := range d.podSubnets {
		bin := "iptables"
		if subnet.IP.To4() == nil {
			bin = "ip6tables"
		}
		ipt := func(args ...string) error {
			out, err := exec.Command(bin, append([]string{"-w", "5", "-t", "nat"}, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		}
		if ipt("-N", masqChain) != nil { // exists already: start it afresh
			if err := ipt("-F", masqChain); err != nil {
				return err
			}
		}
		if err := ipt("-A", masqChain, "-d", subnet.String(), "-j", "RETURN"); err != nil {
			return err
		}
		if err := ipt("-A", masqChain, "-j", "MASQUERADE"); err != nil {
			return err
		}
		jump := []string{"POSTROUTING", "-s", subnet.String(), "-m", "comment", "--comment", "kindnet masquerade", "-j", masqChain}
		if ipt(append([]string{"-C"}, jump...)...) != nil {
			if err := ipt(append([]string{"-A"}, jump...)...); err != nil {
				return err
			}
		}
		log.Printf("%s: pod traffic from %s to outside it is masqueraded", bin, subnet)
	}
	return nil
}

// mtuOf returns the MTU of the interface that holds ip (1500 when none is found).
func mtuOf(ip net.IP) int {
	ifaces, err := net.Interfaces()
	if err != nil {
		return 1500
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
				return iface.MTU
			}
		}
	}
	return 1500
}
