// The console's only script: live refreshes, the event feed, signing in with a token.
// Served from the package with the page's Content-Security-Policy (script-src 'self'):
// no inline code, no eval, no library. Text from the server arrives as markup the server
// escaped (fragments) or is set with textContent (the feed): never parsed from data.
(function () {
  "use strict";

  var body = document.body;

  function byId(id) {
    return document.getElementById(id);
  }

  // The row-like element an element sits in, and the attribute that names it.
  var KEYS = ["data-track", "data-identity", "data-room", "data-dispatch", "data-position"];

  function anchor(element) {
    for (var i = 0; i < KEYS.length; i++) {
      var holder = element.closest("[" + KEYS[i] + "]");
      if (holder) {
        return { key: KEYS[i], value: holder.getAttribute(KEYS[i]) };
      }
    }
    return null;
  }

  // Replaces a region's markup (from the server, escaped there) when it changed, and
  // keeps keyboard focus on the same control of the same row, so a keyboard user is
  // not thrown back to the top by a refresh.
  var shown = new WeakMap();

  function swap(element, markup) {
    if (!element || shown.get(element) === markup) {
      return;
    }
    var focused = document.activeElement;
    var place = focused && element.contains(focused) ? anchor(focused) : null;
    var control = place ? focused.tagName + (focused.className ? "." + focused.className.trim().split(/\s+/).join(".") : "") : null;
    element.innerHTML = markup;
    shown.set(element, markup);
    if (!place) {
      return;
    }
    var holders = element.querySelectorAll("[" + place.key + "]");
    for (var i = 0; i < holders.length; i++) {
      if (holders[i].getAttribute(place.key) === place.value) {
        var again = holders[i].querySelector(control);
        if (again) {
          again.focus();
        }
        return;
      }
    }
  }

  // Asks `url` for JSON every `every` ms while the page is visible; 401 means the
  // session ended (back to sign-in), 404 that the thing is gone.
  function poll(url, apply, every) {
    var stopped = false;
    function tick() {
      if (stopped) {
        return;
      }
      if (document.hidden) {
        setTimeout(tick, every);
        return;
      }
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            stopped = true;
            window.location.assign("/console/sign-in");
            return null;
          }
          if (response.status === 404) {
            return { gone: true };
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          if (data) {
            body.setAttribute("data-stale", "false");
            if (apply(data) === false) {
              stopped = true;
            }
          }
        })
        .catch(function () {
          body.setAttribute("data-stale", "true");
        })
        .then(function () {
          if (!stopped) {
            setTimeout(tick, every);
          }
        });
    }
    setTimeout(tick, every);
  }

  function roomsPage(url) {
    poll(url, function (data) {
      swap(byId("rooms-body"), data.rows);
      swap(byId("rooms-pager"), data.pager);
      byId("rooms-summary").textContent = data.summary;
      body.setAttribute("data-total", String(data.total));
    }, 1000);
  }

  function roomPage(url) {
    poll(url, function (data) {
      if (data.gone) {
        byId("room-gone").hidden = false;
        body.setAttribute("data-gone", "true");
        var forms = document.querySelectorAll("#main form");
        for (var i = 0; i < forms.length; i++) {
          var controls = forms[i].querySelectorAll("button, input");
          for (var j = 0; j < controls.length; j++) {
            controls[j].disabled = true;
          }
        }
        return false;
      }
      swap(byId("room-facts-box"), data.facts);
      byId("room-topic").textContent = data.topic;
      swap(byId("participants-body"), data.participants);
      swap(byId("room-agents"), data.agents);
      swap(byId("room-events"), data.events);
      body.setAttribute("data-count", String(data.count));
      return true;
    }, 1000);
  }

  function when(seconds) {
    var time = document.createElement("time");
    var moment = new Date(seconds * 1000);
    time.dateTime = moment.toISOString();
    time.textContent = moment.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    return time;
  }

  function feedItem(event) {
    var item = document.createElement("li");
    item.className = "event";
    item.setAttribute("data-position", String(event.position));
    item.setAttribute("data-event", event.name);
    item.appendChild(when(event.at));
    var name = document.createElement("span");
    name.className = "event-name";
    name.textContent = event.name;
    item.appendChild(document.createTextNode(" "));
    item.appendChild(name);
    if (event.room) {
      var room = document.createElement("a");
      room.className = "event-room";
      room.href = "/console/room/" + encodeURIComponent(event.room);
      room.textContent = event.room;
      item.appendChild(document.createTextNode(" "));
      item.appendChild(room);
    }
    var data = document.createElement("span");
    data.className = "event-data";
    var text = JSON.stringify(event.data || {});
    data.textContent = text.length > 300 ? text.slice(0, 299) + "\u2026" : text;
    item.appendChild(document.createTextNode(" "));
    item.appendChild(data);
    return item;
  }

  function eventsPage() {
    var feed = byId("event-feed");
    var status = byId("feed-status");
    if (!feed || !window.EventSource) {
      return;
    }
    function state(name, text) {
      status.setAttribute("data-state", name);
      status.textContent = text;
    }
    var source = null;
    function connect() {
      // From the newest entry shown: nothing missed, nothing twice.
      var after = feed.getAttribute("data-after") || "0";
      source = new EventSource(feed.getAttribute("data-stream") + "?after=" + encodeURIComponent(after));
      source.onopen = function () {
        state("live", "Live");
      };
      source.onerror = function () {
        state("reconnecting", "Reconnecting\u2026");
        if (source.readyState !== EventSource.CLOSED) {
          return; // the browser reconnects by itself, sending Last-Event-ID
        }
        // Refused (the session ended, the service restarted): look, then start again.
        setTimeout(function () {
          fetch("/console/events", { credentials: "same-origin", cache: "no-store" })
            .then(function (response) {
              if (response.url.indexOf("/console/sign-in") !== -1) {
                window.location.assign("/console/sign-in");
              } else {
                connect();
              }
            })
            .catch(function () {
              source.onerror();
            });
        }, 2000);
      };
      source.onmessage = function (message) {
        var event;
        try {
          event = JSON.parse(message.data);
        } catch (error) {
          return;
        }
        var empty = feed.querySelector("li.none");
        if (empty) {
          empty.remove();
        }
        feed.insertBefore(feedItem(event), feed.firstChild);
        feed.setAttribute("data-after", String(event.position));
        while (feed.children.length > 200) {
          feed.removeChild(feed.lastChild);
        }
      };
    }
    connect();
    window.addEventListener("pagehide", function () {
      if (source) {
        source.close();
      }
    });
  }

  function tokenSignIn(form) {
    form.addEventListener("submit", function (submitted) {
      submitted.preventDefault();
      var error = byId("sign-in-error");
      var token = form.querySelector("input[name=token]").value.trim();
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      }).then(function (response) {
        if (response.ok) {
          window.location.assign("/console");
          return null;
        }
        return response.json().then(function (answer) {
          error.textContent = answer.message || "Sign-in failed.";
          error.hidden = false;
        });
      }).catch(function () {
        error.textContent = "Sign-in failed: the service did not answer.";
        error.hidden = false;
      });
    });
  }

  var live = body.getAttribute("data-live");
  var page = body.getAttribute("data-page");
  if (page === "rooms" && live) {
    roomsPage(live);
  } else if (page === "room" && live) {
    roomPage(live);
  } else if (page === "events") {
    eventsPage();
  }
  var tokenForm = document.querySelector("form[data-token-sign-in]");
  if (tokenForm) {
    tokenSignIn(tokenForm);
  }
})();
