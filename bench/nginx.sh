# bench/nginx.sh — sourced by bench/trace.sh and bench/trace_cost.sh.
# start_nginx WORK starts nginx (Debian's) in the foreground as a
# background job serving a 2-byte page on 127.0.0.1:8080 (one worker, no
# access log, every temporary path under WORK, backlog 4096), sets
# nginx_pid, and returns once the port accepts (or after 5 s).
start_nginx() {
    local work=$1 nginx
    mkdir -p "$work/logs"
    cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server {
        listen 127.0.0.1:8080 backlog=4096;
        location / { return 200 "ok"; }
    }
}
CONF
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    "$nginx" -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
    nginx_pid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
        sleep 0.1
    done
}
